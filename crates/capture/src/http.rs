//! MJPEG over HTTP: the `multipart/x-mixed-replace` stream most IP cameras (and `tensorcv
//! --serve`) send — one JPEG per part. A plain `image/jpeg` answer is a one-frame stream.
//! Plain `http://` only; every read has a timeout, so a silent camera is an error, not a hang.

use crate::error::{source_err, Error, Result};
use crate::{jpeg, Frame, Source, SourceInfo};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use tensorcv_imgproc::io::{imdecode, DecodeOptions};

/// The largest part accepted (a corrupt length must not allocate gigabytes).
const MAX_PART: usize = 64 << 20;

/// A live MJPEG stream from an HTTP server.
pub struct MjpegStream {
    info: SourceInfo,
    reader: BufReader<TcpStream>,
    /// the multipart boundary; `None` for a single `image/jpeg` answer
    boundary: Option<String>,
    index: u64,
    start: Instant,
    done: bool,
    timeout: Duration,
    decode: DecodeOptions,
}

/// `(host:port, path)` of an `http://` URL.
fn split_url(url: &str) -> std::result::Result<(String, String), String> {
    if url.starts_with("https://") {
        return Err("https is not supported (plain http:// only)".into());
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "not an http:// URL".to_string())?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    let host = if host
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && host.contains(':')
        && !host.ends_with(']')
    {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((host, path.to_string()))
}

impl MjpegStream {
    /// Connect and read the response headers; `timeout` bounds the connection and every read.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self> {
        let err = |m: String| source_err(url, m);
        let (host, path) = split_url(url).map_err(err)?;
        let addr = host
            .to_socket_addrs()
            .map_err(|e| err(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| err(format!("cannot resolve {host}")))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| err(format!("cannot connect to {host}: {e}")))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|_| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| err(e.to_string()))?;
        let host_name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host_name}\r\nUser-Agent: tensorcv\r\n\
             Accept: multipart/x-mixed-replace, image/jpeg\r\nConnection: close\r\n\r\n"
        );
        let mut reader = BufReader::new(stream);
        reader
            .get_mut()
            .write_all(request.as_bytes())
            .map_err(|e| err(e.to_string()))?;
        let status = read_line(&mut reader, timeout).map_err(err)?;
        let code = status.split(' ').nth(1).unwrap_or_default();
        if code != "200" {
            return Err(err(format!("the server answered '{}'", status.trim())));
        }
        let headers = read_headers(&mut reader, timeout).map_err(err)?;
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let lower = content_type.to_ascii_lowercase();
        let boundary = if lower.starts_with("multipart/") {
            let b = content_type
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim_matches('"').to_string())
                .ok_or_else(|| err(format!("'{content_type}' has no boundary")))?;
            Some(b.trim_start_matches("--").to_string())
        } else if lower.starts_with("image/jpeg") {
            None
        } else {
            return Err(err(format!(
                "expected an MJPEG stream (multipart/x-mixed-replace) or a JPEG, got \
                 '{content_type}'"
            )));
        };
        Ok(MjpegStream {
            info: SourceInfo {
                name: url.to_string(),
                width: None,
                height: None,
                format: "MJPEG over HTTP".into(),
                fps: None,
                frames: None,
                live: true,
            },
            reader,
            boundary,
            index: 0,
            start: Instant::now(),
            done: false,
            timeout,
            decode: DecodeOptions::default(),
        })
    }

    /// The next part's JPEG bytes; `None` when the stream ends.
    fn next_part(&mut self) -> std::result::Result<Option<Vec<u8>>, String> {
        let Some(boundary) = self.boundary.clone() else {
            // a single JPEG: the rest of the body
            self.done = true;
            let mut body = Vec::new();
            self.reader
                .by_ref()
                .take(MAX_PART as u64)
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
            return Ok(Some(body));
        };
        // find the boundary line
        loop {
            let line = match read_line(&mut self.reader, self.timeout) {
                Ok(l) => l,
                Err(e) if e.contains("closed") => return Ok(None),
                Err(e) => return Err(e),
            };
            let l = line.trim();
            if l.is_empty() {
                continue;
            }
            if l == format!("--{boundary}--") {
                return Ok(None);
            }
            if l == format!("--{boundary}") || l == boundary {
                break;
            }
        }
        let headers = read_headers(&mut self.reader, self.timeout)?;
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        match length {
            Some(n) if n > MAX_PART => Err(format!("a {n} byte part")),
            Some(n) => {
                let mut body = vec![0u8; n];
                self.reader
                    .read_exact(&mut body)
                    .map_err(|e| io_message(&e, self.timeout))?;
                Ok(Some(body))
            }
            None => {
                // no length: the JPEG runs to its end-of-image marker
                let mut body = Vec::new();
                loop {
                    let n = self
                        .reader
                        .read_until(0xd9, &mut body)
                        .map_err(|e| io_message(&e, self.timeout))?;
                    if n == 0 {
                        return Ok(None);
                    }
                    if body.len() >= 2
                        && body[body.len() - 2] == 0xff
                        && *body.last().unwrap_or(&0) == 0xd9
                    {
                        return Ok(Some(body));
                    }
                    if body.len() > MAX_PART {
                        return Err("a part without an end-of-image marker".into());
                    }
                }
            }
        }
    }
}

fn io_message(e: &std::io::Error, timeout: Duration) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no data for {:.1} s", timeout.as_secs_f64())
        }
        std::io::ErrorKind::UnexpectedEof => "the connection closed".into(),
        _ => e.to_string(),
    }
}

/// One CRLF- (or LF-) terminated line, at most 8 kB.
fn read_line(
    reader: &mut BufReader<TcpStream>,
    timeout: Duration,
) -> std::result::Result<String, String> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(8192)
        .read_until(b'\n', &mut line)
        .map_err(|e| io_message(&e, timeout))?;
    if n == 0 {
        return Err("the connection closed".into());
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// Header lines up to the empty line, names lower-cased; at most 100.
fn read_headers(
    reader: &mut BufReader<TcpStream>,
    timeout: Duration,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for _ in 0..100 {
        let line = read_line(reader, timeout)?;
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Err("more than 100 header lines".into())
}

impl Source for MjpegStream {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.done {
            return Ok(None);
        }
        let part = self.next_part().map_err(|e| {
            self.done = true;
            source_err(&self.info.name, e)
        })?;
        let Some(part) = part else {
            self.done = true;
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        let image = imdecode(&jpeg::with_huffman_tables(&part), &self.decode).map_err(|e| {
            Error::Frame {
                source_name: self.info.name.clone(),
                index,
                message: e.to_string(),
            }
        })?;
        if self.info.width.is_none() {
            self.info.width = Some(image.width());
            self.info.height = Some(image.height());
        }
        Ok(Some(Frame {
            image,
            index,
            timestamp: self.start.elapsed(),
            name: None,
            scale: 1.0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://cam.local/video").unwrap(),
            ("cam.local:80".into(), "/video".into())
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080").unwrap(),
            ("127.0.0.1:8080".into(), "/".into())
        );
        assert!(split_url("https://x/").unwrap_err().contains("https"));
        assert!(split_url("http:///x").is_err());
    }
}
