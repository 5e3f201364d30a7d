//! Coupons: the codes shoppers carry to the till.
//!
//! A code ([`code`]) is `DW1-` and 42 Crockford base32 symbols holding the campaign, a serial and
//! the expiry minute, followed by an 80-bit HMAC-SHA256 tag under the server's coupon key. A till
//! that holds the key checks offline what it can: a forged code, a genuine one with any character
//! altered, and an expired one are all refused with their reason. What it cannot check is double
//! redemption: that needs the server, which records each `(campaign, serial)` once.

pub mod code;
pub mod delivery;
pub mod wallet;
