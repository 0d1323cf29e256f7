//! A minimal, bounds-checked DER reader: tag-length-value splitting, OIDs,
//! integers and X.509 times. Reads only; never allocates more than the input.
//! Supports single-byte tags and definite lengths (which is all DER allows
//! for the structures we read).

use crate::error::SigstoreError;

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const BOOLEAN: u8 = 0x01;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;

fn err(what: &str) -> SigstoreError {
    SigstoreError::unusable(format!("malformed DER: {what}"))
}

/// One element: its tag, content bytes and whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }
    pub fn expect(self, tag: u8) -> Result<Tlv<'a>, SigstoreError> {
        if self.tag != tag {
            return Err(err(&format!(
                "expected tag {tag:#04x}, found {:#04x}",
                self.tag
            )));
        }
        Ok(self)
    }
}

#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }
    pub fn read(&mut self) -> Result<Tlv<'a>, SigstoreError> {
        let start = self.pos;
        let tag = *self.data.get(start).ok_or_else(|| err("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(err("high tag numbers are not supported"));
        }
        let first = *self
            .data
            .get(start + 1)
            .ok_or_else(|| err("unexpected end"))?;
        let (len, hdr) = if first < 0x80 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return Err(err("unsupported length encoding"));
            }
            let bytes = self
                .data
                .get(start + 2..start + 2 + n)
                .ok_or_else(|| err("unexpected end"))?;
            let mut l = 0usize;
            for b in bytes {
                l = (l << 8) | *b as usize;
            }
            (l, 2 + n)
        };
        let end = start
            .checked_add(hdr)
            .and_then(|v| v.checked_add(len))
            .ok_or_else(|| err("length overflow"))?;
        let raw = self
            .data
            .get(start..end)
            .ok_or_else(|| err("length exceeds input"))?;
        let value = raw.get(hdr..).ok_or_else(|| err("length exceeds input"))?;
        self.pos = end;
        Ok(Tlv { tag, value, raw })
    }
    pub fn read_tag(&mut self, tag: u8) -> Result<Tlv<'a>, SigstoreError> {
        self.read()?.expect(tag)
    }
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, SigstoreError> {
        if self.peek_tag() == Some(tag) {
            Ok(Some(self.read()?))
        } else {
            Ok(None)
        }
    }
    pub fn finish(&self) -> Result<(), SigstoreError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(err("trailing bytes"))
        }
    }
}

/// Parses exactly one element spanning all of `data`.
pub fn parse_one(data: &[u8], tag: u8) -> Result<Tlv<'_>, SigstoreError> {
    let mut r = Reader::new(data);
    let t = r.read_tag(tag)?;
    r.finish()?;
    Ok(t)
}

/// Dotted-decimal form of an OID's content bytes.
pub fn oid_string(value: &[u8]) -> Result<String, SigstoreError> {
    let mut out = String::new();
    let mut acc: u64 = 0;
    let mut first = true;
    if value.is_empty() {
        return Err(err("empty OID"));
    }
    for (i, b) in value.iter().enumerate() {
        if acc > (u64::MAX >> 7) {
            return Err(err("OID arc too large"));
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if first {
                let (a, b2) = if acc < 40 {
                    (0, acc)
                } else if acc < 80 {
                    (1, acc - 40)
                } else {
                    (2, acc - 80)
                };
                out.push_str(&format!("{a}.{b2}"));
                first = false;
            } else {
                out.push_str(&format!(".{acc}"));
            }
            acc = 0;
        } else if i + 1 == value.len() {
            return Err(err("truncated OID"));
        }
    }
    Ok(out)
}

pub fn read_oid(r: &mut Reader<'_>) -> Result<String, SigstoreError> {
    oid_string(r.read_tag(OID)?.value)
}

/// Unix seconds of a UTCTime or GeneralizedTime (fractional seconds dropped).
pub fn parse_time(t: &Tlv<'_>) -> Result<i64, SigstoreError> {
    let s = std::str::from_utf8(t.value).map_err(|_| err("time is not ASCII"))?;
    let s = s
        .strip_suffix('Z')
        .ok_or_else(|| err("time must be UTC (Z)"))?;
    let (year, rest) = match t.tag {
        UTC_TIME => {
            let y: i64 = s
                .get(0..2)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| err("bad UTCTime"))?;
            (
                if y >= 50 { 1900 + y } else { 2000 + y },
                s.get(2..).unwrap_or(""),
            )
        }
        GENERALIZED_TIME => {
            let y: i64 = s
                .get(0..4)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| err("bad GeneralizedTime"))?;
            (y, s.get(4..).unwrap_or(""))
        }
        _ => return Err(err("not a time")),
    };
    let rest = rest.split('.').next().unwrap_or("");
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("bad time digits"));
    }
    let num = |a: usize| -> i64 {
        rest.get(a..a + 2)
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    let (mo, d, h, mi, se) = (num(0), num(2), num(4), num(6), num(8));
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=60).contains(&se)
    {
        return Err(err("time out of range"));
    }
    Ok(days_from_civil(year, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Re-encodes a TLV header + content (for rebuilding a TBSCertificate).
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}
