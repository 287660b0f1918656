//! A byte stream sealed with AES-256-GCM in frames (the STREAM
//! construction of Hoang, Reyhanitabar, Rogaway and Vizár, as in
//! `age` and Tink): the plaintext is cut into frames of [`FRAME_BYTES`],
//! each sealed on its own with a nonce made of a per-file random prefix,
//! the frame's number and a flag that marks the last frame. So a reader
//! never holds more than one frame, and it detects every change: a byte
//! altered (the frame fails authentication), frames swapped or dropped
//! (the number is in the nonce), the file cut short (no frame carries the
//! last flag), or bytes added after the last frame.
//!
//! Every frame also authenticates the sha256 of the file's header
//! (`aad`), so a header cannot be swapped between files.
//!
//! On disk a frame is its ciphertext's length (4 bytes, little endian)
//! and the ciphertext (plaintext and a 16-byte tag).

use std::io::{Read, Write};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::BackupError;

/// Plaintext bytes per frame (the last may hold fewer, even none).
pub(crate) const FRAME_BYTES: usize = 1 << 20;
/// AES-GCM's tag.
const TAG_BYTES: usize = 16;
/// Random bytes at the start of every frame's nonce; with the 4-byte frame
/// number and the 1-byte last flag they make GCM's 12-byte nonce.
pub(crate) const PREFIX_BYTES: usize = 7;

fn nonce(prefix: &[u8; PREFIX_BYTES], frame: u32, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..PREFIX_BYTES].copy_from_slice(prefix);
    nonce[PREFIX_BYTES..11].copy_from_slice(&frame.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// Seals what is written into frames on `out`.
pub(crate) struct SealWriter<W: Write> {
    out: W,
    cipher: Aes256Gcm,
    prefix: [u8; PREFIX_BYTES],
    aad: [u8; 32],
    frame: u32,
    pending: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    pub fn new(out: W, key: &[u8; 32], prefix: [u8; PREFIX_BYTES], aad: [u8; 32]) -> Self {
        SealWriter {
            out,
            cipher: Aes256Gcm::new(key.into()),
            prefix,
            aad,
            frame: 0,
            pending: Vec::with_capacity(FRAME_BYTES),
        }
    }

    /// Adds `bytes` to the stream.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), BackupError> {
        while !bytes.is_empty() {
            let room = FRAME_BYTES - self.pending.len();
            let take = room.min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            // A full frame is sealed only once more bytes come: the last
            // frame must carry the last flag, so it waits for `finish`.
            if self.pending.len() == FRAME_BYTES && !bytes.is_empty() {
                self.seal(false)?;
            }
        }
        Ok(())
    }

    fn seal(&mut self, last: bool) -> Result<(), BackupError> {
        let nonce = nonce(&self.prefix, self.frame, last);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &self.pending,
                    aad: &self.aad,
                },
            )
            .map_err(|_| BackupError::Seal("AES-GCM refused a frame".into()))?;
        let len = u32::try_from(sealed.len()).expect("a frame is at most 1 MiB and a tag");
        self.out
            .write_all(&len.to_le_bytes())
            .and_then(|()| self.out.write_all(&sealed))
            .map_err(|e| BackupError::io("writing the backup", e))?;
        self.pending.clear();
        self.frame = self
            .frame
            .checked_add(1)
            .ok_or_else(|| BackupError::Seal("more than 2^32 frames (4 PiB)".into()))?;
        Ok(())
    }

    /// Seals the last frame and returns the output.
    pub fn finish(mut self) -> Result<W, BackupError> {
        self.seal(true)?;
        self.out
            .flush()
            .map_err(|e| BackupError::io("writing the backup", e))?;
        Ok(self.out)
    }
}

/// Opens a stream sealed by [`SealWriter`], frame by frame.
pub(crate) struct OpenReader<R: Read> {
    input: R,
    cipher: Aes256Gcm,
    prefix: [u8; PREFIX_BYTES],
    aad: [u8; 32],
    frame: u32,
    /// Where the next frame starts in the file, for error messages.
    offset: u64,
    plain: Vec<u8>,
    read: usize,
    last_seen: bool,
}

impl<R: Read> OpenReader<R> {
    /// `offset`: where the first frame starts in the file.
    pub fn new(
        input: R,
        key: &[u8; 32],
        prefix: [u8; PREFIX_BYTES],
        aad: [u8; 32],
        offset: u64,
    ) -> Self {
        OpenReader {
            input,
            cipher: Aes256Gcm::new(key.into()),
            prefix,
            aad,
            frame: 0,
            offset,
            plain: Vec::new(),
            read: 0,
            last_seen: false,
        }
    }

    /// Fills `out` with the next plaintext bytes.
    pub fn read_exact(&mut self, mut out: &mut [u8]) -> Result<(), BackupError> {
        while !out.is_empty() {
            if self.read == self.plain.len() {
                if self.last_seen {
                    return Err(BackupError::Damaged(
                        "the sealed content ends before everything its manifest lists".into(),
                    ));
                }
                self.next_frame()?;
                continue;
            }
            let take = (self.plain.len() - self.read).min(out.len());
            out[..take].copy_from_slice(&self.plain[self.read..self.read + take]);
            self.read += take;
            out = &mut out[take..];
        }
        Ok(())
    }

    fn next_frame(&mut self) -> Result<(), BackupError> {
        let frame = self.frame;
        let at = self.offset;
        let truncated = || {
            BackupError::Damaged(format!(
                "truncated: the file ends at byte {at}, in or before frame {frame}, and no frame is marked last"
            ))
        };
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len).map_err(|_| truncated())?;
        let len = u32::from_le_bytes(len) as usize;
        if !(TAG_BYTES..=FRAME_BYTES + TAG_BYTES).contains(&len) {
            return Err(BackupError::Damaged(format!(
                "frame {frame} at byte {at} claims {len} bytes; a frame holds {TAG_BYTES} to {} bytes",
                FRAME_BYTES + TAG_BYTES
            )));
        }
        let mut sealed = vec![0u8; len];
        self.input
            .read_exact(&mut sealed)
            .map_err(|_| truncated())?;
        self.offset += 4 + len as u64;
        let open = |last: bool| {
            let nonce = nonce(&self.prefix, frame, last);
            self.cipher.decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: &self.aad,
                },
            )
        };
        let (plain, last) = match open(false) {
            Ok(plain) => (plain, false),
            Err(_) => match open(true) {
                Ok(plain) => (plain, true),
                Err(_) => {
                    return Err(BackupError::Damaged(format!(
                        "frame {frame} at byte {at} fails authentication: its bytes were changed, or frames were reordered"
                    )));
                }
            },
        };
        self.plain = plain;
        self.read = 0;
        self.last_seen = last;
        self.frame = frame
            .checked_add(1)
            .ok_or_else(|| BackupError::Damaged("more than 2^32 frames".into()))?;
        Ok(())
    }

    /// Checks that the stream ended here: every byte read, the last frame
    /// seen, and nothing after it in the file.
    pub fn finish(mut self) -> Result<(), BackupError> {
        if self.read < self.plain.len() {
            return Err(BackupError::Damaged(format!(
                "{} bytes of sealed content that its manifest does not list",
                self.plain.len() - self.read
            )));
        }
        if !self.last_seen {
            // The content ended exactly at a frame's end: the last frame
            // (empty) must follow.
            self.next_frame()?;
            if !self.plain.is_empty() || !self.last_seen {
                return Err(BackupError::Damaged(
                    "sealed content after what its manifest lists".into(),
                ));
            }
        }
        let mut extra = [0u8; 1];
        match self.input.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(BackupError::Damaged(format!(
                "bytes after the last frame, from byte {}",
                self.offset
            ))),
            Err(e) => Err(BackupError::io("reading the backup", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const PREFIX: [u8; PREFIX_BYTES] = [1; PREFIX_BYTES];
    const AAD: [u8; 32] = [9; 32];

    fn seal(plain: &[u8]) -> Vec<u8> {
        let mut w = SealWriter::new(Vec::new(), &KEY, PREFIX, AAD);
        // In pieces, so frames are cut across writes.
        for piece in plain.chunks(333_333) {
            w.write(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn open(sealed: &[u8], len: usize) -> Result<Vec<u8>, BackupError> {
        let mut r = OpenReader::new(sealed, &KEY, PREFIX, AAD, 0);
        let mut out = vec![0u8; len];
        r.read_exact(&mut out)?;
        r.finish()?;
        Ok(out)
    }

    fn plain(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_every_frame_boundary() {
        for len in [
            0,
            1,
            FRAME_BYTES - 1,
            FRAME_BYTES,
            FRAME_BYTES + 1,
            3 * FRAME_BYTES,
        ] {
            let p = plain(len);
            assert_eq!(open(&seal(&p), len).unwrap(), p, "length {len}");
        }
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let p = plain(2 * FRAME_BYTES + 10);
        let sealed = seal(&p);
        let damaged = |bytes: Vec<u8>| open(&bytes, p.len()).unwrap_err().to_string();

        // A byte of the second frame: the error names it and where it starts.
        let first = 4 + FRAME_BYTES + TAG_BYTES;
        let mut flipped = sealed.clone();
        flipped[first + 100] ^= 1;
        let e = damaged(flipped);
        assert!(
            e.contains(&format!("frame 1 at byte {first}")) && e.contains("fails authentication"),
            "{e}"
        );

        let e = damaged(sealed[..sealed.len() - 5].to_vec());
        assert!(e.contains("truncated"), "{e}");
        // Cut exactly after a whole frame: still no last frame.
        let e = damaged(sealed[..2 * first].to_vec());
        assert!(e.contains("truncated"), "{e}");

        let mut longer = sealed.clone();
        longer.push(0);
        let e = damaged(longer);
        assert!(e.contains("after the last frame"), "{e}");

        // Frames 0 and 1 swapped: each fails under the other's number.
        let mut swapped = sealed[first..2 * first].to_vec();
        swapped.extend_from_slice(&sealed[..first]);
        swapped.extend_from_slice(&sealed[2 * first..]);
        let e = damaged(swapped);
        assert!(e.contains("fails authentication"), "{e}");

        let mut huge = sealed.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = damaged(huge);
        assert!(e.contains("claims"), "{e}");

        // Another key or another header: nothing opens.
        let mut r = OpenReader::new(&sealed[..], &[8; 32], PREFIX, AAD, 0);
        assert!(r.read_exact(&mut [0u8; 1]).is_err());
        let mut r = OpenReader::new(&sealed[..], &KEY, PREFIX, [0; 32], 0);
        assert!(r.read_exact(&mut [0u8; 1]).is_err());
    }

    #[test]
    fn content_beyond_or_short_of_what_is_read_is_refused() {
        let p = plain(100);
        let sealed = seal(&p);
        let e = open(&sealed, 50).unwrap_err().to_string();
        assert!(e.contains("does not list"), "{e}");
        let e = open(&sealed, 150).unwrap_err().to_string();
        assert!(e.contains("ends before"), "{e}");
    }
}
