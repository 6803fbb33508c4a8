//! A message's bytes: held inline when they are few (most messages are a number or
//! a small struct), so that such a message allocates nothing on its way through a
//! channel; on the heap otherwise.

use std::ops::Deref;

/// At most this many bytes are held inline: the size of the WIT `small-message`.
pub(crate) const INLINE: usize = 24;

/// The bytes of a message.
#[derive(Clone)]
pub(crate) enum Bytes {
    /// `len` bytes at the start of `data`; the rest is zero.
    Inline {
        len: u8,
        data: [u8; INLINE],
    },
    Heap(Vec<u8>),
}

impl Default for Bytes {
    fn default() -> Self {
        Bytes::Inline {
            len: 0,
            data: [0; INLINE],
        }
    }
}

impl Bytes {
    /// A copy of `bytes`, inline if they fit.
    pub(crate) fn copy_from(bytes: &[u8]) -> Self {
        if bytes.len() > INLINE {
            return Bytes::Heap(bytes.to_vec());
        }
        let mut data = [0; INLINE];
        data[..bytes.len()].copy_from_slice(bytes);
        Bytes::Inline {
            len: bytes.len() as u8,
            data,
        }
    }

    /// The bytes of a small message: `len` bytes of three little-endian words.
    /// `None` if `len` is over [`INLINE`].
    pub(crate) fn from_words(len: u8, words: [u64; 3]) -> Option<Self> {
        if usize::from(len) > INLINE {
            return None;
        }
        let mut data = [0; INLINE];
        for (chunk, w) in data.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        // What the guest left past `len` is not part of the message: zero, as the
        // invariant says (two equal messages are equal bytes, and `to_words` gives
        // back exactly what was sent).
        data[usize::from(len)..].fill(0);
        Some(Bytes::Inline { len, data })
    }

    /// The bytes as the length and three little-endian words of a small message,
    /// if they fit one.
    pub(crate) fn to_words(&self) -> Option<(u8, [u64; 3])> {
        match self {
            // Zero past `len`: the words as they are.
            Bytes::Inline { len, data } => Some((*len, words(data))),
            // A few bytes that came as a list (with endpoints, say).
            Bytes::Heap(v) => match Bytes::copy_from(v) {
                Bytes::Inline { len, data } => Some((len, words(&data))),
                Bytes::Heap(_) => None,
            },
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Inline { len, data } => &data[..usize::from(*len)],
            Bytes::Heap(v) => v,
        }
    }

    /// The bytes, moved out if they are on the heap.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Bytes::Inline { .. } => self.as_slice().to_vec(),
            Bytes::Heap(v) => v,
        }
    }
}

/// Inline bytes as three little-endian words.
fn words(data: &[u8; INLINE]) -> [u64; 3] {
    let word = |i: usize| u64::from_le_bytes(data[8 * i..8 * i + 8].try_into().expect("8 bytes"));
    [word(0), word(1), word(2)]
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes::Heap(v)
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_every_length() {
        for n in 0..=INLINE {
            let bytes: Vec<u8> = (1..=n as u8).collect();
            let (len, words) = Bytes::copy_from(&bytes).to_words().expect("fits");
            assert_eq!(usize::from(len), n);
            assert_eq!(Bytes::from_words(len, words).unwrap().as_slice(), &bytes[..]);
        }
    }

    #[test]
    fn too_many_bytes_are_not_words() {
        let big = Bytes::copy_from(&[7; INLINE + 1]);
        assert!(matches!(big, Bytes::Heap(_)));
        assert!(big.to_words().is_none());
        assert!(Bytes::from_words(INLINE as u8 + 1, [0; 3]).is_none());
    }

    #[test]
    fn bytes_past_the_length_are_zeroed() {
        let bytes = Bytes::from_words(3, [u64::MAX; 3]).unwrap();
        assert_eq!(bytes.as_slice(), &[0xff; 3]);
        let (len, words) = bytes.to_words().unwrap();
        assert_eq!((len, words), (3, [0xff_ffff, 0, 0]));
        let Bytes::Inline { data, .. } = Bytes::from_words(9, [u64::MAX; 3]).unwrap() else {
            panic!("small bytes are inline")
        };
        assert_eq!(&data[..9], &[0xff; 9]);
        assert!(data[9..].iter().all(|&b| b == 0), "{data:?}");
    }

    #[test]
    fn a_heap_message_that_fits_goes_as_words() {
        let (len, words) = Bytes::from(vec![1, 2, 3]).to_words().unwrap();
        assert_eq!((len, words[0]), (3, 0x030201));
    }
}
