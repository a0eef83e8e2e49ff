//! PIN policy checks for user-chosen PINs (SPEC PIN-1): length, character set, forbidden list.

use crate::otp;
use crate::policy::{PinCharset, PinPolicy};

/// Checks a candidate PIN; the error is a short reason suitable for the prompt.
pub fn check_pin_policy(policy: &PinPolicy, pin: &[u8]) -> Result<(), &'static str> {
    if pin.len() < policy.min_length {
        return Err("too short");
    }
    if pin.len() > policy.max_length {
        return Err("too long");
    }
    match policy.charset {
        PinCharset::Numeric if !pin.iter().all(u8::is_ascii_digit) => {
            return Err("use digits only")
        }
        PinCharset::Alphanumeric if !pin.iter().all(u8::is_ascii_alphanumeric) => {
            return Err("use letters and digits only")
        }
        _ => {}
    }
    // Compare against every forbidden PIN, without stopping early.
    let mut forbidden = false;
    for f in &policy.forbidden {
        forbidden |= otp::ct_eq(f.as_bytes(), pin);
    }
    if forbidden {
        return Err("that PIN is not allowed");
    }
    Ok(())
}
