//! The time column: text or numbers into one instant per row, in
//! microseconds since 1970-01-01T00:00:00Z.
//!
//! Accepted (leading and trailing spaces ignored):
//! - numbers (`881250949`, `-5`, `1.7e9`, `1700000000.25`): epochs in
//!   `schema.time_unit` (`s`, `ms`, `us`, `ns`); without a unit they fail
//!   with `time_unit_required`;
//! - RFC 3339 / ISO 8601 date-times: `2024-03-01T12:30:00Z`,
//!   `2024-03-01T12:30:00.123456+09:00`, `2024-03-01 12:30:00`,
//!   `2024-03-01T12:30`, `2024-03-01`; `/` may separate the date
//!   (`2024/03/01 12:30:00`); the offset may be `Z`, `±HH:MM`, `±HHMM`,
//!   `±HH` or ` UTC`; without one the time is UTC. Fractions beyond
//!   microseconds are truncated.
//!
//! Anything else fails with `time_column_parse_error`.

use crate::recipe::model::TimeUnit;

/// Why a value is not a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFault {
    /// A number, and the recipe gives no `schema.time_unit`.
    UnitRequired,
    /// Neither a number nor a date-time this parser knows.
    Unparseable,
    /// A number or date outside the representable range (±292 000 years).
    OutOfRange,
}

/// Parse one value of the time column.
pub fn parse(text: &str, unit: Option<TimeUnit>) -> Result<i64, TimeFault> {
    let t = text.trim().as_bytes();
    if t.is_empty() {
        return Err(TimeFault::Unparseable);
    }
    if looks_numeric(t) {
        let unit = unit.ok_or(TimeFault::UnitRequired)?;
        return epoch(text.trim(), unit);
    }
    datetime(t).ok_or(TimeFault::Unparseable)?
}

/// A number in `unit` since the epoch, in microseconds.
pub fn epoch_int(value: i64, unit: TimeUnit) -> Result<i64, TimeFault> {
    match unit {
        TimeUnit::S => value.checked_mul(1_000_000).ok_or(TimeFault::OutOfRange),
        TimeUnit::Ms => value.checked_mul(1_000).ok_or(TimeFault::OutOfRange),
        TimeUnit::Us => Ok(value),
        TimeUnit::Ns => Ok(value.div_euclid(1_000)),
    }
}

/// A float in `unit` since the epoch, in microseconds.
pub fn epoch_float(value: f64, unit: TimeUnit) -> Result<i64, TimeFault> {
    let scale = match unit {
        TimeUnit::S => 1e6,
        TimeUnit::Ms => 1e3,
        TimeUnit::Us => 1.0,
        TimeUnit::Ns => 1e-3,
    };
    let us = (value * scale).floor();
    if !us.is_finite() || us.abs() >= 9.2e18 {
        return Err(TimeFault::OutOfRange);
    }
    Ok(us as i64)
}

fn epoch(text: &str, unit: TimeUnit) -> Result<i64, TimeFault> {
    match text.parse::<i64>() {
        Ok(v) => epoch_int(v, unit),
        Err(_) => epoch_float(text.parse::<f64>().map_err(|_| TimeFault::Unparseable)?, unit),
    }
}

/// Digits with an optional sign, decimal point and exponent.
fn looks_numeric(t: &[u8]) -> bool {
    let body = t.strip_prefix(b"-").or_else(|| t.strip_prefix(b"+")).unwrap_or(t);
    body.first().is_some_and(|b| b.is_ascii_digit() || *b == b'.')
        && body.iter().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        // `2024-03-01` is a date, not arithmetic.
        && !body[1..].iter().zip(body).any(|(b, prev)| *b == b'-' && !matches!(prev, b'e' | b'E'))
}

struct Cursor<'a> {
    t: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let d = self.t.get(self.i..self.i + n)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(d.iter().fold(0i64, |a, b| a * 10 + i64::from(b - b'0')))
    }
    fn eat(&mut self, set: &[u8]) -> Option<u8> {
        let b = *self.t.get(self.i)?;
        if set.contains(&b) {
            self.i += 1;
            Some(b)
        } else {
            None
        }
    }
    fn done(&self) -> bool {
        self.i == self.t.len()
    }
}

/// `Some(Ok(us))`, `Some(Err(OutOfRange))`, or `None` when not a date-time.
fn datetime(t: &[u8]) -> Option<Result<i64, TimeFault>> {
    let mut c = Cursor { t, i: 0 };
    let year = c.digits(4)?;
    let sep = c.eat(b"-/")?;
    let month = c.digits(2)?;
    c.eat(&[sep])?;
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
    let mut offset_minutes = 0i64;
    if !c.done() {
        c.eat(b"Tt ")?;
        hour = c.digits(2)?;
        c.eat(b":")?;
        minute = c.digits(2)?;
        if c.eat(b":").is_some() {
            second = c.digits(2)?;
            if c.eat(b".,").is_some() {
                let start = c.i;
                let mut scale = 100_000;
                while let Some(d) = c.digits(1) {
                    micros += d * scale;
                    scale /= 10;
                }
                if c.i == start {
                    return None;
                }
            }
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        c.eat(b" ");
        if c.eat(b"Zz").is_some() {
        } else if let Some(sign) = c.eat(b"+-") {
            let h = c.digits(2)?;
            c.eat(b":");
            let m = if c.done() { 0 } else { c.digits(2)? };
            if h > 23 || m > 59 {
                return None;
            }
            offset_minutes = (h * 60 + m) * if sign == b'-' { -1 } else { 1 };
        } else if c.t[c.i..].eq_ignore_ascii_case(b"UTC") {
            c.i = c.t.len();
        }
        if !c.done() {
            return None;
        }
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds.checked_mul(1_000_000).and_then(|s| s.checked_add(micros)).ok_or(TimeFault::OutOfRange))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn date_times() {
        assert_eq!(parse("1970-01-01", None), Ok(0));
        assert_eq!(parse("2024-03-01T12:30:00Z", None), Ok(1_709_296_200 * S));
        assert_eq!(parse(" 2024-03-01 12:30:00 ", None), Ok(1_709_296_200 * S));
        assert_eq!(parse("2024/03/01 12:30", None), Ok(1_709_296_200 * S));
        assert_eq!(parse("2024-03-01T21:30:00+09:00", None), Ok(1_709_296_200 * S));
        assert_eq!(parse("2024-03-01T07:30:00-0500", None), Ok(1_709_296_200 * S));
        assert_eq!(parse("2024-03-01 12:30:00 UTC", None), Ok(1_709_296_200 * S));
        assert_eq!(parse("2024-03-01T12:30:00.123456789Z", None), Ok(1_709_296_200 * S + 123_456));
        assert_eq!(parse("1969-12-31T23:59:59Z", None), Ok(-S));
        assert_eq!(parse("2000-02-29", None), Ok(951_782_400 * S));
    }

    #[test]
    fn numbers_need_a_unit() {
        assert_eq!(parse("881250949", None), Err(TimeFault::UnitRequired));
        assert_eq!(parse("881250949", Some(TimeUnit::S)), Ok(881_250_949 * S));
        assert_eq!(parse("881250949123", Some(TimeUnit::Ms)), Ok(881_250_949_123_000));
        assert_eq!(parse("1500", Some(TimeUnit::Ns)), Ok(1));
        assert_eq!(parse("-1500", Some(TimeUnit::Ns)), Ok(-2));
        assert_eq!(parse("1.5", Some(TimeUnit::S)), Ok(1_500_000));
        assert_eq!(parse("1e3", Some(TimeUnit::Ms)), Ok(1_000_000));
        assert_eq!(parse("99999999999999999", Some(TimeUnit::S)), Err(TimeFault::OutOfRange));
    }

    #[test]
    fn rubbish_is_unparseable() {
        for bad in ["", "yesterday", "2024-13-01", "2023-02-29", "2024-03-01T25:00", "2024-03-01T12:30:00+9", "2024-03-01X", "1-2-3"] {
            assert_eq!(parse(bad, Some(TimeUnit::S)), Err(TimeFault::Unparseable), "{bad}");
        }
    }
}
