//! Reading a whole file with a bound on what is read, not only on what its metadata says:
//! devices and pipes report no length, and a file may grow while it is read.

use std::io::{ErrorKind, Read};
use std::path::Path;

/// Why [`read_at_most`] read nothing.
pub(crate) enum ReadError {
    /// opening or reading failed (a folder is `InvalidInput`)
    Io(std::io::Error),
    /// more than the limit: the file's size, when its metadata gave one
    TooLarge(Option<u64>),
}

/// All of `path`'s bytes, at most `limit` of them. The buffer grows by doubling up to the
/// limit and no further (`read_to_end` would double past it, and a 2 GiB model read from a
/// device would ask for 4 GiB at once).
pub(crate) fn read_at_most(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if meta.is_dir() {
        return Err(ReadError::Io(std::io::Error::new(
            ErrorKind::InvalidInput,
            "a folder, not a file",
        )));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(Some(meta.len())));
    }
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    let out_of_memory = |_| ReadError::Io(ErrorKind::OutOfMemory.into());
    let mut bytes: Vec<u8> = Vec::new();
    bytes
        .try_reserve_exact((meta.len() as usize).max(64 << 10).min(max.max(1)))
        .map_err(out_of_memory)?;
    loop {
        if bytes.len() == bytes.capacity() {
            if bytes.len() >= max {
                let mut probe = [0u8; 1];
                if read_some(&mut file, &mut probe).map_err(ReadError::Io)? > 0 {
                    return Err(ReadError::TooLarge(None));
                }
                break;
            }
            let more = bytes.capacity().min(max - bytes.len());
            bytes.try_reserve_exact(more).map_err(out_of_memory)?;
        }
        // at most 8 MiB a read, so a pipe's small reads do not zero the whole spare room each time
        let filled = bytes.len();
        bytes.resize(bytes.capacity().min(filled + (8 << 20)), 0);
        let n = read_some(&mut file, &mut bytes[filled..]).map_err(ReadError::Io)?;
        bytes.truncate(filled + n);
        if n == 0 {
            break;
        }
    }
    Ok(bytes)
}

/// One `read`, retried when a signal interrupts it.
fn read_some(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
