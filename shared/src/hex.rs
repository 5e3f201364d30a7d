//! Allocation-free lowercase hex formatting, and hex parsing for tools and tests.
//!
//! Every byte string Dwell prints (namespaces, EIDs, manufacturer data, addresses) is lowercase hex;
//! these helpers implement `Display` so the no_std core can format without a heap.

use core::fmt;

/// Formats a byte slice as lowercase hex without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Formats a Bluetooth device address, stored in display order (most significant byte first), as
/// `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacAddr<'a>(pub &'a [u8; 6]);

impl fmt::Display for MacAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            a[0], a[1], a[2], a[3], a[4], a[5]
        )
    }
}

/// Why a hex string could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HexError {
    /// An odd number of hex digits.
    OddLength,
    /// A character that is not a hex digit, at this byte offset of the input.
    InvalidDigit(usize),
    /// The output buffer is too small for the decoded bytes.
    TooLong,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::OddLength => f.write_str("odd number of hex digits"),
            HexError::InvalidDigit(at) => write!(f, "not a hex digit at offset {at}"),
            HexError::TooLong => f.write_str("hex string longer than expected"),
        }
    }
}

impl core::error::Error for HexError {}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex digits into `out`, returning the number of bytes written. ASCII whitespace, `:` and
/// `-` between byte pairs are ignored so addresses, UUIDs and spaced dumps can be pasted as they are.
pub fn decode_into(s: &str, out: &mut [u8]) -> Result<usize, HexError> {
    let mut n = 0;
    let mut hi: Option<u8> = None;
    for (i, c) in s.bytes().enumerate() {
        if hi.is_none() && (c.is_ascii_whitespace() || c == b':' || c == b'-') {
            continue;
        }
        let v = nibble(c).ok_or(HexError::InvalidDigit(i))?;
        match hi.take() {
            None => hi = Some(v),
            Some(h) => {
                *out.get_mut(n).ok_or(HexError::TooLong)? = (h << 4) | v;
                n += 1;
            }
        }
    }
    if hi.is_some() {
        return Err(HexError::OddLength);
    }
    Ok(n)
}

/// Decodes exactly `N` bytes of hex.
pub fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    let n = decode_into(s, &mut out)?;
    if n != N {
        return Err(HexError::OddLength);
    }
    Ok(out)
}

/// Decodes hex into a new vector.
#[cfg(feature = "alloc")]
pub fn decode(s: &str) -> Result<alloc::vec::Vec<u8>, HexError> {
    let mut out = alloc::vec![0u8; s.len() / 2 + 1];
    let n = decode_into(s, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Encodes bytes as a lowercase hex string.
#[cfg(feature = "alloc")]
pub fn encode(bytes: &[u8]) -> alloc::string::String {
    use alloc::string::ToString;
    Hex(bytes).to_string()
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn formats_lowercase() {
        assert_eq!(Hex(&[0x00, 0xab, 0xff]).to_string(), "00abff");
        assert_eq!(
            MacAddr(&[0x1c, 0xd6, 0xcd, 0xef, 0x94, 0x35]).to_string(),
            "1c:d6:cd:ef:94:35"
        );
    }

    #[test]
    fn decodes_with_separators() {
        assert_eq!(decode("1C:d6 cd-ef").unwrap(), [0x1c, 0xd6, 0xcd, 0xef]);
        assert_eq!(decode("abc"), Err(HexError::OddLength));
        assert_eq!(decode("zz"), Err(HexError::InvalidDigit(0)));
        assert_eq!(decode_array::<2>("0102"), Ok([1, 2]));
        assert!(decode_array::<2>("010203").is_err());
    }
}
