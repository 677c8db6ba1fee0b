//! Reading a fuzz input as a few control bytes and a list of records.
//!
//! Every target's input is small control fields followed by records, each a 16-bit
//! big-endian length and that many bytes (a frame, a datagram). A short input reads as
//! zeros and empty records, so every byte string is some valid input and the fuzzer never
//! wastes runs on a format it cannot meet. The seed generator writes the same layout
//! ([`Writer`]), so the corpus holds real frames the mutator can start from.

/// A cursor over the input: reads never fail, they run dry.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// `N` bytes, zero-padded when the input runs out.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }

    /// Up to `n` bytes (fewer when the input runs out).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// One record: a 16-bit length, then up to that many bytes.
    pub fn record(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.bytes(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Writes inputs in the layout [`Input`] reads (for the seed generator and tests).
#[derive(Debug, Default, Clone)]
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn u8(mut self, b: u8) -> Self {
        self.out.push(b);
        self
    }

    pub fn u16(mut self, v: u16) -> Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.out.extend_from_slice(b);
        self
    }

    /// A record: its length (cut to 65535 bytes) and its bytes.
    pub fn record(self, b: &[u8]) -> Self {
        let b = &b[..b.len().min(usize::from(u16::MAX))];
        self.u16(b.len() as u16).bytes(b)
    }

    pub fn done(self) -> Vec<u8> {
        self.out
    }
}
