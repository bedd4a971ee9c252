//! The preview server under hostile and heavy load: slow clients are cut off, silent ones
//! closed, a flood beyond the connection limit answered `503`, a client that stops reading a
//! stream dropped — and `/results` keeps answering 200 concurrent clients while 64 slow ones
//! hold connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tensorcv_capture::serve::{Limits, PreviewServer};
use tensorcv_imgproc::{Image, PixelFormat};

fn frame() -> Image {
    let mut img = Image::new(64, 48, PixelFormat::Bgr8).unwrap();
    for (i, b) in img.as_bytes_mut().iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    img
}

/// The status line of a plain request, or the error.
fn get(addr: SocketAddr, request: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line.trim().to_string())
}

fn status(addr: SocketAddr, method: &str, path: &str) -> String {
    get(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .unwrap()
}

#[test]
fn only_get_and_head_of_known_routes_are_answered() {
    let server = PreviewServer::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    server
        .publish(&frame().view(), 0, "{\"a\":1}", 10.0)
        .unwrap();
    assert_eq!(status(addr, "GET", "/results"), "HTTP/1.1 200 OK");
    assert_eq!(status(addr, "HEAD", "/results"), "HTTP/1.1 200 OK");
    assert_eq!(status(addr, "HEAD", "/stream"), "HTTP/1.1 200 OK");
    assert_eq!(status(addr, "GET", "/nope"), "HTTP/1.1 404 Not Found");
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        assert_eq!(
            status(addr, method, "/results"),
            "HTTP/1.1 405 Method Not Allowed"
        );
    }
    // garbage is a 400 from hyper's parser, not a hang
    let line = get(addr, "\u{0}\u{1}garbage\r\n\r\n").unwrap_or_default();
    assert!(
        line.is_empty() || line.starts_with("HTTP/1.1 400"),
        "{line}"
    );
    // a request head over the limit is refused
    let big = format!(
        "GET /results HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 << 10)
    );
    let line = get(addr, &big).unwrap_or_default();
    assert!(
        line.is_empty() || line.starts_with("HTTP/1.1 431"),
        "{line}"
    );
    server.close();
}

#[test]
fn results_keep_answering_200_clients_while_64_slow_ones_hold_connections() {
    let server = PreviewServer::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    server
        .publish(&frame().view(), 3, "{\"n\":3}", 10.0)
        .unwrap();
    // 64 slow clients: each trickles its request head a byte at a time
    let slow: Vec<_> = (0..64)
        .map(|_| {
            std::thread::spawn(move || {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    return;
                };
                for b in b"GET /results HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
                    if s.write_all(&[*b]).is_err() {
                        return; // cut off: what should happen
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // 200 clients at once
    let barrier = Arc::new(Barrier::new(200));
    let start = Instant::now();
    let fast: Vec<_> = (0..200)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"GET /results HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).unwrap();
                answer
            })
        })
        .collect();
    let answers: Vec<String> = fast.into_iter().map(|t| t.join().unwrap()).collect();
    let took = start.elapsed();
    let ok = answers
        .iter()
        .filter(|a| {
            a.starts_with("HTTP/1.1 200")
                && a.ends_with("{\"frame\":3,\"fps\":10.000,\"results\":{\"n\":3}}")
        })
        .count();
    println!("200 concurrent /results with 64 slow clients: {ok} answered in {took:?}");
    assert_eq!(ok, 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
    for t in slow {
        t.join().unwrap();
    }
    server.close();
}

#[test]
fn slow_and_silent_clients_are_cut_off_and_a_flood_gets_503() {
    let limits = Limits {
        connections: 8,
        head_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = PreviewServer::bind_with("127.0.0.1:0", limits).unwrap();
    let addr = server.local_addr();
    // silent: closed after the head timeout
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 256];
    let n = silent.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        n == 0 || text.starts_with("HTTP/1.1 408"),
        "closed or timed out: {text}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // a flood: eight connections held open, the ninth is refused at once
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let line = get(addr, "GET /results HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(line, "HTTP/1.1 503 Service Unavailable");
    assert!(t.elapsed() < Duration::from_secs(1));
    drop(held);
    // once the held ones are cut off, answers come again
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(status(addr, "GET", "/results"), "HTTP/1.1 200 OK");
    server.close();
}

#[test]
fn a_stream_client_that_stops_reading_is_dropped() {
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = PreviewServer::bind_with("127.0.0.1:0", limits).unwrap();
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // a large, noisy frame so the socket buffers fill fast
    let mut big = Image::new(1280, 720, PixelFormat::Bgr8).unwrap();
    for (i, b) in big.as_bytes_mut().iter_mut().enumerate() {
        *b = (i.wrapping_mul(2654435761) >> 13) as u8;
    }
    let t = Instant::now();
    while !server.watched() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(server.watched(), "the stream client is counted");
    // the client reads nothing; the server keeps publishing
    let t = Instant::now();
    let mut i = 0;
    while server.watched() && t.elapsed() < Duration::from_secs(20) {
        server.publish(&big.view(), i, "{}", 30.0).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "a stalled stream was dropped after {:?}, {i} frames",
        t.elapsed()
    );
    assert!(!server.watched(), "the stalled client is dropped");
    drop(s);
    server.close();
}

#[test]
fn a_stream_ends_with_its_closing_boundary_when_the_server_closes() {
    let server = PreviewServer::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    while !server.watched() {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.publish(&frame().view(), 0, "{}", 1.0).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    server.close();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("Content-Type: image/jpeg"), "{text:.200}");
    assert!(text.contains("--frame--"), "the closing boundary");
}
