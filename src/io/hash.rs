//! FNV-1a (64 bit), the one hash behind the crate's cache keys and checkpoint file checks:
//! `h₀ = 0xcbf29ce484222325`, `hᵢ₊₁ = (hᵢ ⊕ byteᵢ) · 0x100000001b3 mod 2⁶⁴`. It streams, so
//! hashing pieces one after another equals hashing their concatenation. Not cryptographic: it
//! tells files and settings apart, it does not authenticate them.

/// A streaming FNV-1a hasher.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// The empty hash (the offset basis).
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes `bytes` after everything eaten so far.
    pub fn eat(&mut self, bytes: &[u8]) -> &mut Self {
        self.0 = bytes.iter().fold(self.0, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
        self
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// FNV-1a (64 bit) of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    Fnv1a::new().eat(bytes).value()
}

/// FNV-1a (64 bit) of `bytes` as 16 lower-case hex digits.
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_test_vectors() {
        // The FNV reference test vectors (Noll's fnv test suite, FNV-1a 64).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a_hex(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn streaming_equals_the_concatenation() {
        let mut h = Fnv1a::new();
        h.eat(b"foo").eat(b"").eat(b"bar");
        assert_eq!(h.value(), fnv1a(b"foobar"));
    }
}
