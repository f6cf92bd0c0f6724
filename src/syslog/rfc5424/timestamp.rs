//! RFC 5424 TIMESTAMP (§6.2.3): a restricted RFC 3339 `date-time`.
//!
//! ```text
//! TIMESTAMP    = NILVALUE / FULL-DATE "T" FULL-TIME
//! FULL-DATE    = DATE-FULLYEAR "-" DATE-MONTH "-" DATE-MDAY
//! FULL-TIME    = PARTIAL-TIME TIME-OFFSET
//! PARTIAL-TIME = TIME-HOUR ":" TIME-MINUTE ":" TIME-SECOND [TIME-SECFRAC]
//! TIME-SECFRAC = "." 1*6DIGIT
//! TIME-OFFSET  = "Z" / ("+" / "-") TIME-HOUR ":" TIME-MINUTE
//! ```
//! `T` and `Z` must be upper case and leap seconds are not allowed.

/// What is wrong with a TIMESTAMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampErrorKind {
    #[error("expected 4-digit year")]
    Year,
    #[error("expected '-'")]
    ExpectedDash,
    #[error("month must be 01..12")]
    Month,
    #[error("day must be 01..28/29/30/31 for the month")]
    Day,
    #[error("expected 'T' between date and time")]
    ExpectedT,
    #[error("hour must be 00..23")]
    Hour,
    #[error("expected ':'")]
    ExpectedColon,
    #[error("minute must be 00..59")]
    Minute,
    #[error("second must be 00..59")]
    Second,
    #[error("TIME-SECFRAC needs at least one digit")]
    SecFracEmpty,
    #[error("TIME-SECFRAC has more than 6 digits")]
    SecFracTooLong,
    #[error("expected 'Z' or a +hh:mm / -hh:mm offset")]
    Offset,
    #[error("offset hour must be 00..23")]
    OffsetHour,
    #[error("offset minute must be 00..59")]
    OffsetMinute,
    #[error("unexpected data after the offset")]
    Trailing,
    #[error("instant outside the supported range")]
    OutOfRange,
}

/// A TIMESTAMP error with the byte offset inside the timestamp text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset} of timestamp: {kind}")]
pub struct TimestampError {
    pub offset: usize,
    pub kind: TimestampErrorKind,
}

fn two_digits(b: &[u8], at: usize) -> Option<u8> {
    match b.get(at..at + 2) {
        Some(&[x, y]) if x.is_ascii_digit() && y.is_ascii_digit() => {
            Some((x - b'0') * 10 + (y - b'0'))
        }
        _ => None,
    }
}

fn expect(b: &[u8], at: usize, want: u8, kind: TimestampErrorKind) -> Result<(), TimestampError> {
    if b.get(at) == Some(&want) {
        Ok(())
    } else {
        Err(TimestampError { offset: at, kind })
    }
}

fn is_leap(y: u32) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

/// Check `ts` against the TIMESTAMP grammar (not NILVALUE) including
/// calendar validity (no 2023-02-29).
pub fn validate_timestamp(ts: &[u8]) -> Result<(), TimestampError> {
    use TimestampErrorKind as K;
    let err = |offset, kind| Err(TimestampError { offset, kind });
    let year = match ts.get(0..4) {
        Some(y) if y.iter().all(u8::is_ascii_digit) => {
            y.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'))
        }
        _ => return err(0, K::Year),
    };
    expect(ts, 4, b'-', K::ExpectedDash)?;
    let month = match two_digits(ts, 5) {
        Some(m @ 1..=12) => m,
        _ => return err(5, K::Month),
    };
    expect(ts, 7, b'-', K::ExpectedDash)?;
    let max_day = match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    match two_digits(ts, 8) {
        Some(d) if (1..=max_day).contains(&d) => {}
        _ => return err(8, K::Day),
    }
    expect(ts, 10, b'T', K::ExpectedT)?;
    if !matches!(two_digits(ts, 11), Some(0..=23)) {
        return err(11, K::Hour);
    }
    expect(ts, 13, b':', K::ExpectedColon)?;
    if !matches!(two_digits(ts, 14), Some(0..=59)) {
        return err(14, K::Minute);
    }
    expect(ts, 16, b':', K::ExpectedColon)?;
    if !matches!(two_digits(ts, 17), Some(0..=59)) {
        return err(17, K::Second);
    }
    let mut i = 19;
    if ts.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while ts.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return err(i, K::SecFracEmpty);
        }
        if i - start > 6 {
            return err(start + 6, K::SecFracTooLong);
        }
    }
    match ts.get(i) {
        Some(b'Z') => i += 1,
        Some(b'+' | b'-') => {
            if !matches!(two_digits(ts, i + 1), Some(0..=23)) {
                return err(i + 1, K::OffsetHour);
            }
            expect(ts, i + 3, b':', K::ExpectedColon)?;
            if !matches!(two_digits(ts, i + 4), Some(0..=59)) {
                return err(i + 4, K::OffsetMinute);
            }
            i += 6;
        }
        _ => return err(i, K::Offset),
    }
    if i != ts.len() {
        return err(i, K::Trailing);
    }
    Ok(())
}

/// Validate and convert a TIMESTAMP to an instant.
pub fn parse_timestamp(ts: &str) -> Result<jiff::Timestamp, TimestampError> {
    validate_timestamp(ts.as_bytes())?;
    // The text is now a plain RFC 3339 date-time, which jiff parses; it can
    // only fail for instants beyond jiff's range (e.g. 9999-12-31T23:59:59Z).
    ts.parse::<jiff::Timestamp>().map_err(|_| TimestampError {
        offset: 0,
        kind: TimestampErrorKind::OutOfRange,
    })
}

/// Format an instant as an RFC 5424 TIMESTAMP in UTC with microsecond
/// precision (the most TIME-SECFRAC allows). `None` for years outside
/// 0000..=9999, which the 4-digit year cannot express.
pub fn format_timestamp(ts: jiff::Timestamp) -> Option<String> {
    let dt = jiff::tz::TimeZone::UTC.to_datetime(ts);
    if dt.year() < 0 {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1000
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid() {
        for t in [
            "1985-04-12T23:20:50.52Z",
            "1985-04-12T19:20:50.52-04:00",
            "2003-10-11T22:14:15.003Z",
            "2003-08-24T05:14:15.000003-07:00",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00+23:59",
        ] {
            assert_eq!(validate_timestamp(t.as_bytes()), Ok(()), "{t}");
            assert!(parse_timestamp(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn invalid() {
        use TimestampErrorKind as K;
        for (t, k) in [
            ("2003-13-11T22:14:15Z", K::Month),
            ("2003-00-11T22:14:15Z", K::Month),
            ("2023-02-29T22:14:15Z", K::Day),
            ("1900-02-29T22:14:15Z", K::Day),
            ("2003-10-11t22:14:15Z", K::ExpectedT),
            ("2003-10-11T24:14:15Z", K::Hour),
            ("2003-10-11T22:60:15Z", K::Minute),
            ("2003-10-11T22:14:60Z", K::Second),
            ("2003-10-11T22:14:15.Z", K::SecFracEmpty),
            ("2003-10-11T22:14:15.0000003Z", K::SecFracTooLong),
            ("2003-10-11T22:14:15z", K::Offset),
            ("2003-10-11T22:14:15", K::Offset),
            ("2003-10-11T22:14:15+24:00", K::OffsetHour),
            ("2003-10-11T22:14:15+02:60", K::OffsetMinute),
            ("2003-10-11T22:14:15+0200", K::ExpectedColon),
            ("2003-10-11T22:14:15ZZ", K::Trailing),
            ("03-10-11T22:14:15Z", K::Year),
        ] {
            assert_eq!(
                validate_timestamp(t.as_bytes()).map_err(|e| e.kind),
                Err(k),
                "{t}"
            );
        }
        assert_eq!(
            parse_timestamp("9999-12-31T23:59:59Z").map_err(|e| e.kind),
            Err(K::OutOfRange)
        );
    }

    #[test]
    fn format() {
        let ts: jiff::Timestamp = "2003-10-11T22:14:15.003Z".parse().unwrap();
        let s = format_timestamp(ts).unwrap();
        assert_eq!(s, "2003-10-11T22:14:15.003000Z");
        assert_eq!(parse_timestamp(&s), Ok(ts));
    }
}
