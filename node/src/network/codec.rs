//! Frames for the request-response protocols: one frame per stream, a
//! 4-byte little-endian length then that many bytes, bounded in size; the
//! sender half-closes after writing.
//!
//! The length comes first so the reader allocates the frame once, at its
//! size: reading to the end of the stream instead grows a buffer through
//! every doubling (copying and zero-filling each), which for a proposal of
//! megabytes cost more than decrypting it.

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::StreamProtocol;
use std::io;

/// Reads and writes raw byte frames of at most `max_request` /
/// `max_response` bytes; decoding is left to the caller, which can then
/// attribute garbage to the peer that sent it.
#[derive(Clone, Debug)]
pub struct FrameCodec {
    pub max_request: usize,
    pub max_response: usize,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Reads one frame: its length, its bytes, then the end of the stream.
async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(invalid(format!("frame of {len} bytes is larger than {max}")));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    // The sender half-closes after its frame: anything more is garbage.
    let mut extra = [0u8; 1];
    if io.read(&mut extra).await? != 0 {
        return Err(invalid(format!("bytes after a frame of {len} bytes")));
    }
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, frame: &[u8]) -> io::Result<()> {
    let len = u32::try_from(frame.len()).map_err(|_| invalid(format!("frame of {} bytes", frame.len())))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(frame).await
}

impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io, self.max_request).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    fn read(bytes: &[u8], max: usize) -> io::Result<Vec<u8>> {
        futures::executor::block_on(read_frame(&mut Cursor::new(bytes.to_vec()), max))
    }

    fn written(frame: &[u8]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        futures::executor::block_on(write_frame(&mut out, frame)).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_written_frame_reads_back() {
        for frame in [&b""[..], b"x", &[7u8; 70_000][..]] {
            let wire = written(frame);
            assert_eq!(wire.len(), frame.len() + 4, "a 4-byte length, then the frame");
            assert_eq!(read(&wire, 70_000).unwrap(), frame);
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let mut wire = u32::MAX.to_le_bytes().to_vec();
        wire.extend_from_slice(b"short");
        let e = read(&wire, 1 << 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), format!("frame of {} bytes is larger than {}", u32::MAX, 1 << 20));
    }

    #[test]
    fn truncated_and_trailing_bytes_are_errors() {
        let wire = written(b"hello");
        assert_eq!(read(&wire[..6], 100).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read(&wire[..2], 100).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let mut long = wire.clone();
        long.push(0);
        assert_eq!(read(&long, 100).unwrap_err().to_string(), "bytes after a frame of 5 bytes");
    }
}
