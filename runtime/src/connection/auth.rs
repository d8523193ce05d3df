//! HMAC-SHA256 challenge-response, run before any payload is decoded.
//!
//! The protocol is Python's `deliver_challenge` / `answer_challenge`, with the
//! digest fixed to SHA-256 and every message in a small length-prefixed frame
//! (the same header as [`codec`](crate::codec) frames):
//!
//! 1. the server sends `#CHALLENGE#{sha256}` followed by 32 random bytes;
//! 2. the client answers `{sha256}` + HMAC-SHA256(authkey, `{sha256}`‖random);
//! 3. the server checks the digest in constant time and sends `#WELCOME#` or
//!    `#FAILURE#`;
//! 4. the roles swap, so each side knows the other holds the key.
//!
//! Every read is bounded in size ([`MAX_HANDSHAKE_MESSAGE`]) and in time (the
//! caller's deadline), so random bytes, a half-open peer or a peer that stops
//! mid-message cost at most the handshake timeout and never an allocation
//! larger than a few hundred bytes.

use std::io::Read;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::codec::{self, frame, frame::Limits};
use crate::error::{Error, IoContext, Result};

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const DIGEST: &[u8] = b"{sha256}";
const NONCE_LEN: usize = 32;

/// The longest handshake message accepted; a longer length prefix fails at once.
pub(crate) const MAX_HANDSHAKE_MESSAGE: usize = 256;

type HmacSha256 = Hmac<Sha256>;

/// Random bytes from the kernel.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).ctx("read /dev/urandom")?;
    Ok(buf)
}

fn mac(key: &[u8], message: &[u8]) -> Result<HmacSha256> {
    // HMAC takes keys of any length; the error exists only for fixed-key MACs.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key)
        .map_err(|e| Error::Authentication(format!("unusable authkey: {e}")))?;
    m.update(message);
    Ok(m)
}

fn send(fd: BorrowedFd<'_>, message: &[u8]) -> Result<()> {
    codec::write_frame(fd, message, &[])
}

/// Reads one small frame within `deadline`, rejecting a length over
/// [`MAX_HANDSHAKE_MESSAGE`] before reading its body.
fn recv(fd: BorrowedFd<'_>, deadline: Instant) -> Result<Vec<u8>> {
    let limits =
        Limits { max: MAX_HANDSHAKE_MESSAGE, first_byte: Some(deadline), rest: Some(deadline), skip_oversized: false };
    match frame::read_frame_with(fd, limits) {
        Ok((body, fds)) if fds.is_empty() => Ok(body),
        Ok(_) => Err(Error::Authentication("a handshake message may not carry file descriptors".into())),
        Err(Error::MessageTooLarge { size, .. }) => Err(Error::Authentication(format!(
            "handshake message of {size} bytes exceeds the limit of {MAX_HANDSHAKE_MESSAGE}; is the peer a multiproc \
             connection?"
        ))),
        Err(Error::Timeout(_)) => {
            Err(Error::Authentication("the peer did not complete the handshake within the timeout".into()))
        }
        Err(Error::Closed(_)) => {
            Err(Error::Authentication("the peer closed the connection during the handshake".into()))
        }
        Err(Error::Decode { reason, .. }) => Err(Error::Authentication(format!("bad handshake message: {reason}"))),
        Err(e) => Err(e),
    }
}

/// Sends a challenge and checks the answer (Python's `deliver_challenge`).
pub(crate) fn deliver_challenge(fd: BorrowedFd<'_>, key: &[u8], deadline: Instant) -> Result<()> {
    let mut message = DIGEST.to_vec();
    message.extend_from_slice(&random_bytes(NONCE_LEN)?);
    let mut challenge = CHALLENGE.to_vec();
    challenge.extend_from_slice(&message);
    send(fd, &challenge)?;
    let answer = recv(fd, deadline)?;
    let expected = mac(key, &message)?;
    let ok = answer.strip_prefix(DIGEST).is_some_and(|digest| expected.verify_slice(digest).is_ok());
    if ok {
        send(fd, WELCOME)
    } else {
        let _ = send(fd, FAILURE);
        Err(Error::Authentication("digest received was wrong (the peer has another authkey)".into()))
    }
}

/// Answers a challenge (Python's `answer_challenge`).
pub(crate) fn answer_challenge(fd: BorrowedFd<'_>, key: &[u8], deadline: Instant) -> Result<()> {
    let challenge = recv(fd, deadline)?;
    let Some(message) = challenge.strip_prefix(CHALLENGE) else {
        return Err(Error::Authentication("protocol error: expected a challenge from the peer".into()));
    };
    if !message.starts_with(DIGEST) {
        return Err(Error::Authentication("protocol error: the peer asked for a digest other than sha256".into()));
    }
    let mut answer = DIGEST.to_vec();
    answer.extend_from_slice(&mac(key, message)?.finalize().into_bytes());
    send(fd, &answer)?;
    let verdict = recv(fd, deadline)?;
    if verdict == WELCOME {
        Ok(())
    } else {
        Err(Error::Authentication("digest sent was rejected (the peer has another authkey)".into()))
    }
}

/// The listening side: challenge first, then answer.
pub(crate) fn server_handshake(fd: BorrowedFd<'_>, key: &[u8], deadline: Instant) -> Result<()> {
    deliver_challenge(fd, key, deadline)?;
    answer_challenge(fd, key, deadline)
}

/// The connecting side: answer first, then challenge.
pub(crate) fn client_handshake(fd: BorrowedFd<'_>, key: &[u8], deadline: Instant) -> Result<()> {
    answer_challenge(fd, key, deadline)?;
    deliver_challenge(fd, key, deadline)
}
