//! Slow readers: WebSocket connections that subscribe to everything a node publishes (new
//! heads, every log, every admitted transaction in full) and then read a trickle of what it
//! sends, as a stuck or underpowered dashboard would. A node under load must keep finalizing
//! and answering others while they lag; the run reports how much they got and whether the node
//! shed them.
//!
//! The client speaks just enough WebSocket (RFC 6455) for this: the upgrade, and masked text
//! frames for the subscriptions. What comes back is counted, not parsed.

use crate::client::ClientError;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
    task::JoinHandle,
};

/// What each slow reader reads at a time, and how often: 40 KiB/s, far below what a
/// saturated chain publishes (an ERC-20 block's logs alone are hundreds of KiB).
const READ_CHUNK: usize = 4 << 10;
const READ_EVERY: Duration = Duration::from_millis(100);

/// The subscriptions each reader asks for.
const SUBSCRIPTIONS: [&str; 3] = [
    r#"["newHeads"]"#,
    r#"["logs",{}]"#,
    r#"["newPendingTransactions",true]"#,
];

/// How the slow readers fared.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct SlowReadersOutcome {
    pub readers: usize,
    /// What they received in all, in KiB.
    pub received_kib: f64,
    /// Readers whose connection the node closed.
    pub dropped: usize,
}

/// Readers running on the caller's runtime until [`SlowReaders::finish`].
pub struct SlowReaders {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Result<Read, ClientError>>>,
}

/// One reader's result.
struct Read {
    bytes: u64,
    closed_by_node: bool,
}

impl SlowReaders {
    /// Connects `count` readers and subscribes each; they read slowly from then on.
    pub async fn start(rpc: SocketAddr, count: usize) -> Result<Self, ClientError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let stream = subscribe(rpc).await?;
            tasks.push(tokio::spawn(trickle(stream, stop.clone())));
        }
        Ok(Self { stop, tasks })
    }

    /// Stops the readers and sums up what they got.
    pub async fn finish(self) -> Result<SlowReadersOutcome, ClientError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcome = SlowReadersOutcome {
            readers: self.tasks.len(),
            ..SlowReadersOutcome::default()
        };
        for task in self.tasks {
            let read = task
                .await
                .map_err(|e| ClientError::Protocol(format!("a slow reader failed: {e}")))??;
            outcome.received_kib += read.bytes as f64 / 1024.0;
            outcome.dropped += usize::from(read.closed_by_node);
        }
        Ok(outcome)
    }
}

/// Opens a WebSocket to `rpc` and sends the subscriptions; the answers are left unread.
async fn subscribe(rpc: SocketAddr) -> Result<BufReader<TcpStream>, ClientError> {
    let stream = TcpStream::connect(rpc)
        .await
        .map_err(|source| ClientError::Connect { addr: rpc, source })?;
    let mut stream = BufReader::new(stream);
    // The key only proves the server speaks WebSocket; its accept hash is not checked here.
    let upgrade = format!(
        "GET / HTTP/1.1\r\nHost: {rpc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dHJlbGxpcyBzbG93IHJlYWQ=\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.get_mut().write_all(upgrade.as_bytes()).await?;
    let mut status = String::new();
    stream.read_line(&mut status).await?;
    if !status.starts_with("HTTP/1.1 101") {
        return Err(ClientError::Protocol(format!(
            "WebSocket upgrade refused: {}",
            status.trim_end()
        )));
    }
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(ClientError::Protocol(
                "the connection closed during the WebSocket upgrade".into(),
            ));
        }
        if line == "\r\n" {
            break;
        }
    }
    for (id, params) in SUBSCRIPTIONS.iter().enumerate() {
        let call =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_subscribe","params":{params}}}"#);
        stream
            .get_mut()
            .write_all(&text_frame(call.as_bytes()))
            .await?;
    }
    Ok(stream)
}

/// Reads [`READ_CHUNK`] every [`READ_EVERY`] until told to stop or the node hangs up.
async fn trickle(
    mut stream: BufReader<TcpStream>,
    stop: Arc<AtomicBool>,
) -> Result<Read, ClientError> {
    let mut buffer = vec![0; READ_CHUNK];
    let mut bytes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(READ_EVERY).await;
        // Only what has arrived: a reader waiting here would not notice the stop.
        match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buffer)).await {
            Ok(Ok(0)) => {
                return Ok(Read {
                    bytes,
                    closed_by_node: true,
                });
            }
            Ok(Ok(n)) => bytes += n as u64,
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(Read {
                    bytes,
                    closed_by_node: true,
                });
            }
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => {} // Nothing arrived yet.
        }
    }
    Ok(Read {
        bytes,
        closed_by_node: false,
    })
}

/// A client's text frame (final, masked, as RFC 6455 requires of clients).
fn text_frame(payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_masked_with_the_length_encoded_as_the_rfc_says() {
        // RFC 6455 §5.7's masked "Hello" uses mask 37 fa 21 3d.
        assert_eq!(
            text_frame(b"Hello"),
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        let long = text_frame(&[b'x'; 300]);
        assert_eq!(long[..4], [0x81, 0x80 | 126, 0x01, 0x2c]);
        assert_eq!(long.len(), 4 + 4 + 300);
    }
}
