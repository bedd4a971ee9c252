//! The `multipart/x-mixed-replace` reader of MJPEG streams, without I/O: bytes go in as they
//! arrive ([`Multipart::feed`]), parts come out ([`Multipart::step`]). Everything it holds is
//! bounded: a part (with or without `Content-Length`) is at most `max_part` bytes, a header
//! line 8 kB, a part's headers 100 lines, and bytes before a boundary are looked through
//! `max_part` at most — so a stream whose boundary is not the one its `Content-Type` names
//! is an error saying so, not an empty stream.
//!
//! Boundaries are found as RFC 2046 says (`--boundary` at the start of a line, the part's
//! body ending at the CRLF before the next one), so a JPEG holding `FF D9` in an EXIF
//! thumbnail is read whole. A part with `Content-Length` is complete as soon as its bytes
//! are there.

use memchr::memmem;

/// The longest header line of a part.
const MAX_LINE: usize = 8192;
/// The most header lines of a part.
const MAX_HEADERS: usize = 100;

/// What [`Multipart::step`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// a part's body
    Part(Vec<u8>),
    /// more bytes are needed ([`Multipart::feed`])
    NeedMore,
    /// the closing boundary, or the end of the input after at least one part
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// looking for a boundary line
    Boundary,
    /// reading a part's header lines
    Headers { lines: usize },
    /// reading a body: its length, if the headers said
    Body { length: Option<usize> },
    /// after the closing boundary
    Done,
}

/// A multipart stream being read.
#[derive(Debug)]
pub struct Multipart {
    /// `--` + the boundary
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    /// where unread bytes start in `buf`
    pos: usize,
    /// bytes looked through for a boundary since the last part
    skipped: usize,
    /// whether the unread bytes start a line (the stream's first byte does)
    at_line_start: bool,
    /// a part's length from its headers
    length: Option<usize>,
    max_part: usize,
    parts: u64,
    state: State,
}

impl Multipart {
    /// A reader for parts separated by `boundary` (as the `Content-Type` gives it, with or
    /// without the leading `--`), each at most `max_part` bytes.
    pub fn new(boundary: &str, max_part: usize) -> Self {
        let boundary = boundary.trim_start_matches("--");
        Multipart {
            delimiter: format!("--{boundary}").into_bytes(),
            buf: Vec::new(),
            pos: 0,
            skipped: 0,
            at_line_start: true,
            length: None,
            max_part: max_part.max(1),
            parts: 0,
            state: State::Boundary,
        }
    }

    /// Parts read so far.
    pub fn parts(&self) -> u64 {
        self.parts
    }

    /// Add bytes that arrived.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && (self.pos >= self.buf.len() / 2 || self.pos > 1 << 20) {
            self.at_line_start = self.buf[self.pos - 1] == b'\n';
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Whether the unread bytes begin a line.
    fn line_start(&self, at: usize) -> bool {
        if at == 0 {
            self.at_line_start
        } else {
            self.buf[at - 1] == b'\n'
        }
    }

    /// Find the delimiter at a line start at or after `from`.
    fn find_delimiter(&self, from: usize) -> Option<usize> {
        let mut at = from;
        while let Some(i) = memmem::find(&self.buf[at..], &self.delimiter) {
            let i = at + i;
            if self.line_start(i) {
                return Some(i);
            }
            at = i + 1;
        }
        None
    }

    /// The next line from `pos` (without its CR LF), if complete.
    fn line(&self) -> Result<Option<(usize, usize)>, String> {
        let rest = &self.buf[self.pos..];
        match memchr::memchr(b'\n', rest) {
            Some(n) if n > MAX_LINE => Err(format!("a header line longer than {MAX_LINE} bytes")),
            Some(n) => {
                let end = if n > 0 && rest[n - 1] == b'\r' {
                    n - 1
                } else {
                    n
                };
                Ok(Some((self.pos + end, self.pos + n + 1)))
            }
            None if rest.len() > MAX_LINE => {
                Err(format!("a header line longer than {MAX_LINE} bytes"))
            }
            None => Ok(None),
        }
    }

    /// Read as far as the bytes so far allow; `eof`: no more bytes will come.
    pub fn step(&mut self, eof: bool) -> Result<Step, String> {
        loop {
            match self.state {
                State::Done => return Ok(Step::End),
                State::Boundary => {
                    let Some(i) = self.find_delimiter(self.pos) else {
                        let looked = self.skipped + (self.buf.len() - self.pos);
                        if looked > self.max_part {
                            return Err(format!(
                                "no boundary '{}' in {looked} bytes: the stream's parts are not \
                                 separated by the boundary its Content-Type names",
                                String::from_utf8_lossy(&self.delimiter)
                            ));
                        }
                        if eof {
                            return if self.parts == 0 {
                                Err(format!(
                                    "the stream ended before its first part: the boundary '{}' \
                                     never appeared",
                                    String::from_utf8_lossy(&self.delimiter)
                                ))
                            } else {
                                Ok(Step::End)
                            };
                        }
                        // keep only what could still begin a delimiter
                        let keep = self.delimiter.len() + 1;
                        let drop = (self.buf.len() - self.pos).saturating_sub(keep);
                        self.skipped += drop;
                        self.pos += drop;
                        return Ok(Step::NeedMore);
                    };
                    let after = i + self.delimiter.len();
                    if self.buf.len() < after + 2 {
                        if eof {
                            return self.end_at_eof();
                        }
                        return Ok(Step::NeedMore);
                    }
                    if &self.buf[after..after + 2] == b"--" {
                        self.state = State::Done;
                        return Ok(Step::End);
                    }
                    self.skipped += i - self.pos;
                    self.pos = after;
                    // the rest of the boundary line (transport padding)
                    match self.line()? {
                        Some((_, next)) => {
                            self.pos = next;
                            self.skipped = 0;
                            self.length = None;
                            self.state = State::Headers { lines: 0 };
                        }
                        None if eof => return self.end_at_eof(),
                        None => {
                            // back to the delimiter: it is found again with the whole line
                            self.pos = i;
                            return Ok(Step::NeedMore);
                        }
                    }
                }
                State::Headers { lines } => {
                    let Some((end, next)) = self.line()? else {
                        return if eof {
                            Err("the stream ended inside a part's headers".into())
                        } else {
                            Ok(Step::NeedMore)
                        };
                    };
                    let line = &self.buf[self.pos..end];
                    if line.is_empty() {
                        self.pos = next;
                        self.state = State::Body {
                            length: self.length,
                        };
                        continue;
                    }
                    if lines + 1 > MAX_HEADERS {
                        return Err(format!("a part with more than {MAX_HEADERS} header lines"));
                    }
                    let text = String::from_utf8_lossy(line);
                    if let Some((k, v)) = text.split_once(':') {
                        if k.trim().eq_ignore_ascii_case("content-length") {
                            let n = v.trim().parse::<usize>().map_err(|_| {
                                format!("a part with Content-Length '{}'", v.trim())
                            })?;
                            if n > self.max_part {
                                return Err(format!(
                                    "a {n} byte part, more than the {} allowed",
                                    self.max_part
                                ));
                            }
                            self.length = Some(n);
                        }
                    }
                    self.pos = next;
                    self.state = State::Headers { lines: lines + 1 };
                }
                State::Body { length: Some(n) } => {
                    if self.buf.len() - self.pos < n {
                        return if eof {
                            Err(format!(
                                "the stream ended {} bytes into a {n} byte part",
                                self.buf.len() - self.pos
                            ))
                        } else {
                            Ok(Step::NeedMore)
                        };
                    }
                    let body = self.buf[self.pos..self.pos + n].to_vec();
                    self.pos += n;
                    return Ok(self.part(body));
                }
                State::Body { length: None } => match self.find_delimiter(self.pos) {
                    Some(i) => {
                        // the CR LF before the delimiter belongs to it
                        let mut end = i;
                        for byte in [b'\n', b'\r'] {
                            if end > self.pos && self.buf[end - 1] == byte {
                                end -= 1;
                            }
                        }
                        if end - self.pos > self.max_part {
                            return Err(self.too_long());
                        }
                        let body = self.buf[self.pos..end].to_vec();
                        self.pos = i;
                        return Ok(self.part(body));
                    }
                    None if self.buf.len() - self.pos > self.max_part => {
                        return Err(self.too_long())
                    }
                    None if eof => {
                        // the last part, cut by the end of the stream: its line end is framing
                        let mut body = self.buf[self.pos..].to_vec();
                        if body.ends_with(b"\r\n") {
                            body.truncate(body.len() - 2);
                        }
                        self.pos = self.buf.len();
                        self.state = State::Done;
                        return Ok(if body.is_empty() {
                            Step::End
                        } else {
                            self.parts += 1;
                            Step::Part(body)
                        });
                    }
                    None => return Ok(Step::NeedMore),
                },
            }
        }
    }

    fn part(&mut self, body: Vec<u8>) -> Step {
        self.parts += 1;
        self.state = State::Boundary;
        Step::Part(body)
    }

    fn too_long(&self) -> String {
        format!(
            "a part longer than {} bytes without a Content-Length or a boundary after it",
            self.max_part
        )
    }

    fn end_at_eof(&mut self) -> Result<Step, String> {
        if self.parts == 0 {
            return Err("the stream ended before its first part".into());
        }
        self.state = State::Done;
        Ok(Step::End)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part of `stream`, fed in pieces of `chunk` bytes.
    fn parts(stream: &[u8], chunk: usize, max: usize) -> Result<Vec<Vec<u8>>, String> {
        let mut m = Multipart::new("frame", max);
        let mut out = Vec::new();
        let mut pieces = stream.chunks(chunk.max(1));
        loop {
            match m.step(false)? {
                Step::Part(p) => out.push(p),
                Step::End => return Ok(out),
                Step::NeedMore => match pieces.next() {
                    Some(p) => m.feed(p),
                    None => loop {
                        match m.step(true)? {
                            Step::Part(p) => out.push(p),
                            Step::End => return Ok(out),
                            Step::NeedMore => unreachable!("at the end, more is never needed"),
                        }
                    },
                },
            }
        }
    }

    fn stream(bodies: &[&[u8]], with_length: bool, close: bool) -> Vec<u8> {
        let mut s = b"preamble\r\n".to_vec();
        for b in bodies {
            s.extend_from_slice(b"--frame\r\nContent-Type: image/jpeg\r\n");
            if with_length {
                s.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
            }
            s.extend_from_slice(b"\r\n");
            s.extend_from_slice(b);
            s.extend_from_slice(b"\r\n");
        }
        if close {
            s.extend_from_slice(b"--frame--\r\n");
        }
        s
    }

    #[test]
    fn parts_come_out_whole_whatever_the_pieces() {
        // a body holding what looks like a JPEG end, a CR LF and a near-boundary
        let a: &[u8] = b"\xff\xd8thumb\xff\xd9\r\n--fram more\xff\xd9";
        let b: &[u8] = b"second";
        for with_length in [false, true] {
            for close in [false, true] {
                let s = stream(&[a, b], with_length, close);
                for chunk in [1, 2, 3, 7, 64, 10_000] {
                    let got = parts(&s, chunk, 1000).unwrap();
                    assert_eq!(
                        got,
                        [a.to_vec(), b.to_vec()],
                        "{with_length} {close} {chunk}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_wrong_boundary_is_an_error_not_an_empty_stream() {
        let s = stream(&[&b"x"[..]; 3], true, false).replace_boundary();
        let e = parts(&s, 5, 1000).unwrap_err();
        assert!(
            e.contains("'--frame'") && e.contains("never appeared"),
            "{e}"
        );
        // a long stream of it: refused once max_part bytes were looked through
        let long = stream(&[&[7u8; 500][..]; 10], true, false).replace_boundary();
        let e = parts(&long, 64, 1000).unwrap_err();
        assert!(e.contains("no boundary '--frame'"), "{e}");
    }

    #[test]
    fn parts_are_bounded_with_and_without_a_length() {
        let big = vec![1u8; 5000];
        let e = parts(&stream(&[&big], true, true), 100, 1000).unwrap_err();
        assert!(e.contains("a 5000 byte part"), "{e}");
        let e = parts(&stream(&[&big], false, true), 100, 1000).unwrap_err();
        assert!(e.contains("longer than 1000 bytes"), "{e}");
        // a part that never ends: refused after max_part bytes, however long it goes on
        let mut m = Multipart::new("frame", 1000);
        m.feed(b"--frame\r\n\r\n");
        let mut fed = 0;
        let e = loop {
            match m.step(false) {
                Ok(Step::NeedMore) => {
                    m.feed(&[0u8; 100]);
                    fed += 100;
                    assert!(fed < 10_000);
                }
                Ok(other) => panic!("{other:?}"),
                Err(e) => break e,
            }
        };
        assert!(e.contains("longer than 1000"), "{e}");
        assert!(m.buf.len() < 2000, "memory stays bounded: {}", m.buf.len());
    }

    #[test]
    fn bad_headers_are_errors() {
        for (head, want) in [
            (
                b"--frame\r\nContent-Length: twelve\r\n\r\n".to_vec(),
                "Content-Length 'twelve'",
            ),
            (
                [b"--frame\r\nX: ".to_vec(), vec![b'a'; 9000]].concat(),
                "longer than 8192",
            ),
            (
                [b"--frame\r\n".to_vec(), b"X: y\r\n".repeat(200)].concat(),
                "more than 100 header lines",
            ),
        ] {
            let e = parts(&head, 50, 100_000).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let e = parts(b"--frame\r\nContent-Length: 10\r\n\r\nabc", 4, 100).unwrap_err();
        assert!(e.contains("3 bytes into a 10 byte part"), "{e}");
    }

    trait Replace {
        fn replace_boundary(self) -> Vec<u8>;
    }
    impl Replace for Vec<u8> {
        fn replace_boundary(self) -> Vec<u8> {
            String::from_utf8_lossy(&self)
                .replace("--frame", "--other")
                .into_bytes()
        }
    }
}
