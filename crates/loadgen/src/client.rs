//! A JSON-RPC client over one kept-alive HTTP/1.1 connection: what a load generator needs and
//! no more (POST, `Content-Length` or chunked answers), so it costs the cores it shares with
//! the node as little as possible.

use serde_json::Value;
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
};

/// Longest a request may wait for its answer before the run is declared stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the node's JSON-RPC at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the connection to the node failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the node did not answer within {REQUEST_TIMEOUT:?}")]
    Timeout,
    #[error("the node answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("the node's answer is not HTTP/1.1 as expected: {0}")]
    Protocol(String),
    #[error("the node's answer is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{method} failed: {error}")]
    Rpc { method: String, error: Value },
}

/// One connection to the node.
pub struct Client {
    addr: SocketAddr,
    stream: BufReader<TcpStream>,
    /// The `Authorization` header line every request carries, for a node that asks for API
    /// tokens.
    authorization: Option<String>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            stream: BufReader::new(stream),
            authorization: None,
        })
    }

    /// Presents `token` (an API token) with every request, if there is one.
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.authorization = token.map(|token| format!("Authorization: Bearer {token}\r\n"));
        self
    }

    /// One call; its `result`, or its `error` as [`ClientError::Rpc`].
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let request =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut answer = self.post(request.to_string().as_bytes()).await?;
        if let Some(error) = answer.get("error") {
            return Err(ClientError::Rpc {
                method: method.to_string(),
                error: error.clone(),
            });
        }
        Ok(answer["result"].take())
    }

    /// Posts a JSON body (a call or a batch) and returns the parsed answer.
    pub async fn post(&mut self, body: &[u8]) -> Result<Value, ClientError> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(body))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn exchange(&mut self, body: &[u8]) -> Result<Value, ClientError> {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            self.addr,
            body.len(),
            self.authorization.as_deref().unwrap_or_default()
        );
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let (status, length) = self.read_head().await?;
        let body = match length {
            Some(length) => {
                let mut body = vec![0; length];
                self.stream.read_exact(&mut body).await?;
                body
            }
            None => self.read_chunked().await?,
        };
        if status != 200 {
            return Err(ClientError::Http {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// The status code and the `Content-Length` (`None`: chunked).
    async fn read_head(&mut self) -> Result<(u16, Option<usize>), ClientError> {
        let mut line = String::new();
        self.read_line(&mut line).await?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| ClientError::Protocol(format!("status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                return Err(ClientError::Protocol(format!("header {header:?}")));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse()
                        .map_err(|_| ClientError::Protocol(format!("Content-Length {value:?}")))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        match (length, chunked) {
            (Some(length), false) => Ok((status, Some(length))),
            (_, true) => Ok((status, None)),
            (None, false) => Err(ClientError::Protocol(
                "an answer with neither Content-Length nor chunked encoding".into(),
            )),
        }
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.read_line(&mut line).await?;
            let size = line.trim_end().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| ClientError::Protocol(format!("chunk size {line:?}")))?;
            let start = body.len();
            body.resize(start + size + 2, 0);
            self.stream.read_exact(&mut body[start..]).await?;
            body.truncate(start + size);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    async fn read_line(&mut self, line: &mut String) -> Result<(), ClientError> {
        if self.stream.read_line(line).await? == 0 {
            return Err(ClientError::Protocol(
                "the node closed the connection".into(),
            ));
        }
        Ok(())
    }
}

/// A quantity (`"0x…"`) as a number.
pub fn quantity(value: &Value) -> Option<u64> {
    u64::from_str_radix(value.as_str()?.strip_prefix("0x")?, 16).ok()
}
