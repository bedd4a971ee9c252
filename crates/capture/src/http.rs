//! MJPEG over HTTP: the `multipart/x-mixed-replace` stream most IP cameras (and `tensorcv
//! --serve`) send — one JPEG per part. A plain `image/jpeg` answer is a one-frame stream.
//!
//! The HTTP side is hyper's client (HTTP/1.1; chunked transfer encoding, `Content-Length` and
//! close-delimited bodies are all decoded there), on a single-threaded tokio runtime owned by
//! the stream; the parts are [`crate::multipart`]'s. Every wait is bounded: connecting and
//! each read by the idle timeout ([`OpenOptions::timeout`]), each frame as a whole by the
//! frame deadline ([`OpenOptions::frame_deadline`]: a server trickling a byte a second is cut
//! off), each part by [`OpenOptions::max_part`]. Plain `http://` only (TLS would need a C
//! or assembly crypto library). Behind the `net` feature.

use crate::error::{source_err, Result};
use crate::{OpenOptions, Source};

/// Open an `http://` MJPEG stream (or a JPEG) as [`open`](crate::open) does.
pub fn open(url: &str, options: &OpenOptions) -> Result<Box<dyn Source>> {
    #[cfg(feature = "net")]
    return Ok(Box::new(net::MjpegStream::connect(url, options)?));
    #[cfg(not(feature = "net"))]
    {
        let _ = options;
        Err(source_err(
            url,
            "this build has no network support (tensorcv-capture's `net` feature)",
        ))
    }
}

#[cfg(feature = "net")]
pub use net::MjpegStream;

#[cfg(feature = "net")]
mod net {
    use super::*;
    use crate::error::Error;
    use crate::multipart::{Multipart, Step};
    use crate::{jpeg, Frame, SourceInfo};
    use http_body_util::BodyExt;
    use hyper::body::Incoming;
    use std::time::{Duration, Instant};
    use tensorcv_imgproc::io::{imdecode, DecodeOptions};
    use tokio::runtime::Runtime;

    /// A live MJPEG stream from an HTTP server.
    pub struct MjpegStream {
        info: SourceInfo,
        rt: Runtime,
        body: Incoming,
        /// the multipart reader; `None` for a single `image/jpeg` answer
        parts: Option<Multipart>,
        /// the body ended
        eof: bool,
        index: u64,
        start: Instant,
        done: bool,
        timeout: Duration,
        deadline: Duration,
        max_part: usize,
        decode: DecodeOptions,
    }

    /// The request target of an `http://` URL: (host for connecting, port, Host header, path).
    fn target(url: &str) -> std::result::Result<(String, u16, String, String), String> {
        if url.starts_with("https://") {
            return Err(
                "https is not supported (plain http:// only: TLS would need a C crypto library)"
                    .into(),
            );
        }
        let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err("not an http:// URL".into());
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or("the URL has no host")?;
        // (`Uri::port` is `None` for a port that is no u16: read it from the authority)
        let authority = uri.authority().map_or("", |a| a.as_str());
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let port = match authority.rsplit_once(':').filter(|(_, p)| !p.contains(']')) {
            Some((_, p)) => p
                .parse::<u16>()
                .map_err(|_| format!("port '{p}' is not a port number"))?,
            None => 80,
        };
        let header = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let connect = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let path = uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        Ok((connect, port, header, path))
    }

    /// `no data for 10.0 s`, `connection refused`, ...
    fn seconds(d: Duration) -> String {
        format!("{:.1} s", d.as_secs_f64())
    }

    impl MjpegStream {
        /// Connect, send the request and read the response headers, each bounded by the
        /// options' idle timeout.
        pub fn connect(url: &str, options: &OpenOptions) -> Result<Self> {
            let err = |m: String| source_err(url, m);
            let timeout = options.timeout.unwrap_or(OpenOptions::DEFAULT_TIMEOUT);
            let deadline = options
                .frame_deadline
                .unwrap_or(OpenOptions::DEFAULT_FRAME_DEADLINE)
                .max(timeout);
            let max_part = options.max_part.unwrap_or(OpenOptions::DEFAULT_MAX_PART);
            let (host, port, host_header, path) = target(url).map_err(err)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| err(format!("cannot start the network runtime: {e}")))?;
            let response = rt.block_on(async {
                let within = |what: &'static str| {
                    move |_| format!("no answer to {what} within {}", seconds(timeout))
                };
                let stream = tokio::time::timeout(
                    timeout,
                    tokio::net::TcpStream::connect((host.as_str(), port)),
                )
                .await
                .map_err(within("the connection"))?
                .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
                let _ = stream.set_nodelay(true);
                let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
                    .max_buf_size(64 << 10)
                    .handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                let request = hyper::Request::get(path)
                    .header(hyper::header::HOST, host_header)
                    .header(hyper::header::USER_AGENT, "tensorcv")
                    .header(
                        hyper::header::ACCEPT,
                        "multipart/x-mixed-replace, image/jpeg",
                    )
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .map_err(|e| e.to_string())?;
                tokio::time::timeout(timeout, sender.send_request(request))
                    .await
                    .map_err(within("the request"))?
                    .map_err(|e| format!("the server's answer is not HTTP/1.1 ({e})"))
            });
            let response = response.map_err(err)?;
            let status = response.status();
            if status != hyper::StatusCode::OK {
                return Err(err(format!("the server answered '{status}'")));
            }
            let content_type = response
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let lower = content_type.to_ascii_lowercase();
            let parts = if lower.starts_with("multipart/") {
                let boundary = content_type
                    .split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_string())
                    .filter(|b| !b.is_empty() && b.len() <= 200)
                    .ok_or_else(|| err(format!("'{content_type}' has no usable boundary")))?;
                Some(Multipart::new(&boundary, max_part))
            } else if lower.starts_with("image/jpeg") {
                None
            } else {
                return Err(err(format!(
                    "expected an MJPEG stream (multipart/x-mixed-replace) or a JPEG, got \
                     '{content_type}'"
                )));
            };
            let decode = DecodeOptions {
                limits: options.limits,
                ..DecodeOptions::default()
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
                rt,
                body: response.into_body(),
                parts,
                eof: false,
                index: 0,
                start: Instant::now(),
                done: false,
                timeout,
                deadline,
                max_part,
                decode,
            })
        }

        /// The next part's bytes; `None` when the stream ends.
        fn next_part(&mut self) -> std::result::Result<Option<Vec<u8>>, String> {
            let started = tokio::time::Instant::now();
            let until = started + self.deadline;
            let (timeout, deadline) = (self.timeout, self.deadline);
            let MjpegStream {
                rt,
                body,
                parts,
                eof,
                max_part,
                ..
            } = self;
            rt.block_on(async {
                match parts {
                    // a single JPEG: the whole body, at most max_part bytes
                    None => {
                        let mut jpeg = Vec::new();
                        let max = *max_part;
                        while more(
                            body,
                            &mut |d| jpeg.extend_from_slice(d),
                            timeout,
                            until,
                            deadline,
                        )
                        .await?
                        {
                            if jpeg.len() > max {
                                return Err(format!("a JPEG of more than {max} bytes"));
                            }
                        }
                        *eof = true;
                        Ok(Some(jpeg))
                    }
                    Some(parts) => loop {
                        match parts.step(*eof)? {
                            Step::Part(p) => return Ok(Some(p)),
                            Step::End => return Ok(None),
                            Step::NeedMore => {
                                if !more(body, &mut |d| parts.feed(d), timeout, until, deadline)
                                    .await?
                                {
                                    *eof = true;
                                }
                            }
                        }
                    },
                }
            })
        }
    }

    /// One more piece of `body` into `into`; false at its end. Each wait is bounded by the
    /// idle `timeout`, all of them by `until` (the frame's deadline, `deadline` long).
    async fn more(
        body: &mut Incoming,
        into: &mut dyn FnMut(&[u8]),
        timeout: Duration,
        until: tokio::time::Instant,
        deadline: Duration,
    ) -> std::result::Result<bool, String> {
        loop {
            let wait = (tokio::time::Instant::now() + timeout).min(until);
            match tokio::time::timeout_at(wait, body.frame()).await {
                Err(_) if tokio::time::Instant::now() >= until => {
                    return Err(format!(
                        "a frame took longer than {} to arrive",
                        seconds(deadline)
                    ))
                }
                Err(_) => return Err(format!("no data for {}", seconds(timeout))),
                Ok(None) => return Ok(false),
                Ok(Some(Err(e))) => return Err(format!("the connection broke: {e}")),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            into(&data);
                            return Ok(true);
                        }
                    }
                }
            }
        }
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
            if self.parts.is_none() {
                self.done = true; // one JPEG
            }
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
                target("http://cam.local/video").unwrap(),
                ("cam.local".into(), 80, "cam.local".into(), "/video".into())
            );
            assert_eq!(
                target("http://127.0.0.1:8080").unwrap(),
                (
                    "127.0.0.1".into(),
                    8080,
                    "127.0.0.1:8080".into(),
                    "/".into()
                )
            );
            assert_eq!(target("http://[::1]:81/a?b=1").unwrap().0, "::1");
            assert_eq!(target("http://[::1]:81/a?b=1").unwrap().3, "/a?b=1");
            assert!(target("https://x/").unwrap_err().contains("https"));
            assert!(target("http:///x").is_err());
            assert!(target("http://x:99999/").is_err());
        }
    }
}
