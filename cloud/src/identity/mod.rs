//! Identity of opted-in shoppers: the Eddystone-EID keys registered at opt-in.
//!
//! The computation is `dwell_shared::eid`'s (the same code the firmware and tests use); this module
//! adds what the cloud needs around it: [`resolver`] (EID → opted-in shopper by table lookup),
//! and argument parsing for `dwell-cloud eid`.

pub mod resolver;

use dwell_shared::eid::{self, IdentityKey, MAX_EXPONENT};
use dwell_shared::hex;

/// Why `eid` arguments are unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EidArgError {
    #[error("--identity-key must be 32 hex digits (16 bytes): {0}")]
    Key(hex::HexError),
    #[error("--exponent must be 0..={MAX_EXPONENT} (the EID rotates every 2^K seconds), got {0}")]
    Exponent(u8),
}

/// Parses a 16-byte identity key given as 32 hex digits.
pub fn parse_identity_key(s: &str) -> Result<IdentityKey, EidArgError> {
    hex::decode_array::<16>(s.trim()).map_err(EidArgError::Key)
}

/// The EID, as 16 lowercase hex digits, that `key` advertises at beacon time `t` with exponent `k`.
pub fn eid_hex(key: &IdentityKey, k: u8, t: u32) -> Result<String, EidArgError> {
    if k > MAX_EXPONENT {
        return Err(EidArgError::Exponent(k));
    }
    Ok(hex::encode(&eid::compute(key, k, t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector_prints_as_16_hex_digits() {
        let key = parse_identity_key("0102030405060708090a111213141516").unwrap();
        assert_eq!(eid_hex(&key, 10, 0).unwrap(), "a9b76a71c5f89290");
    }

    #[test]
    fn bad_arguments_say_what_to_fix() {
        assert!(parse_identity_key("0102").is_err());
        let e = eid_hex(&[0; 16], 16, 0).unwrap_err();
        assert!(e.to_string().contains("0..=15"));
    }
}
