//! The CLI's side of the API socket: send one request, read one response (or, for a
//! streaming answer, the first one, and keep the connection for the rest).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::control::api::{Request, Response};

/// How long the CLI waits for an answer (creating a veth and configuring a namespace
/// takes a few milliseconds; a stuck daemon should not hang a script forever).
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the vswitch daemon at {path}: {source} (is `vswitch run` running? point --socket or VSWITCH_SOCKET at its socket)"
    )]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("lost the connection to the daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon sent an answer this CLI does not understand: {0}")]
    Protocol(String),
    /// The daemon refused the request; the message is its own.
    #[error("{0}")]
    Refused(String),
}

pub fn call(socket: &Path, req: &Request) -> Result<Value, ClientError> {
    call_and_keep(socket, req, TIMEOUT).map(|(v, _)| v)
}

/// Sends `req` and reads the first answer, then hands back the connection for the lines
/// that follow (a streaming answer), with `read_timeout` on its reads.
pub fn call_and_keep(
    socket: &Path,
    req: &Request,
    read_timeout: Duration,
) -> Result<(Value, BufReader<UnixStream>), ClientError> {
    let stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut body = serde_json::to_vec(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
    body.push(b'\n');
    // A daemon that refuses the connection answers and closes before reading the
    // request; the write then fails, but its answer is already queued for us.
    let sent = (&stream).write_all(&body);
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    let read = reader.read_line(&mut line);
    if line.is_empty() {
        sent?;
        read?;
        return Err(ClientError::Protocol("no answer".into()));
    }
    reader.get_ref().set_read_timeout(Some(read_timeout))?;
    match serde_json::from_str::<Response>(&line) {
        Ok(Response::Ok(v)) => Ok((v, reader)),
        Ok(Response::Error(e)) => Err(ClientError::Refused(e)),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}
