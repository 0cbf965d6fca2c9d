//! Loose parsing of what a caller says, for the emulator's receptionist policy: names, dates of
//! birth ("born March fourth, nineteen eighty five" or ISO), days ("tomorrow", "Wednesday",
//! ISO, or left open: "the next available morning") and times ("nine thirty", "9:30", "half past
//! ten", "2pm"). No chrono in this crate, so dates are a tiny civil-calendar type.

/// A calendar date (proleptic Gregorian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub y: i32,
    pub m: u32,
    pub d: u32,
}

impl Date {
    pub fn new(y: i32, m: u32, d: u32) -> Option<Self> {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let ok =
            (1..=12).contains(&m) && d >= 1 && d <= days[(m as usize).saturating_sub(1).min(11)];
        ok.then_some(Self { y, m, d })
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    pub fn to_days(self) -> i64 {
        let y = i64::from(self.y) - i64::from(self.m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.m);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn from_days(z: i64) -> Self {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
        Self { y, m, d }
    }

    /// 0 = Monday … 6 = Sunday.
    pub fn weekday(self) -> u32 {
        (self.to_days() + 3).rem_euclid(7) as u32
    }

    /// "Monday" … "Sunday".
    pub fn weekday_name(self) -> &'static str {
        const NAMES: [&str; 7] = [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        NAMES[self.weekday() as usize % 7]
    }

    pub fn add_days(self, n: i64) -> Self {
        Self::from_days(self.to_days() + n)
    }

    /// Today in UTC (the stores work in UTC too).
    pub fn today() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::from_days((secs / 86_400) as i64)
    }

    pub fn parse_iso(s: &str) -> Option<Self> {
        let mut it = s.get(..10)?.split('-');
        let y = it.next()?.parse().ok()?;
        let m = it.next()?.parse().ok()?;
        let d = it.next()?.parse().ok()?;
        Self::new(y, m, d)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.y, self.m, self.d)
    }
}

/// The first word naming a month in full, and that month (1-12).
pub(super) fn month_word(ws: &[String]) -> Option<(usize, u32)> {
    ws.iter().enumerate().find_map(|(i, w)| {
        let m = MONTHS.iter().position(|m| *m == w.as_str())?;
        Some((i, m as u32 + 1))
    })
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const ONES: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const ONES_TH: [&str; 10] = [
    "", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
];
const TEENS: [&str; 10] = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TEENS_TH: [&str; 10] = [
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const TENS_TH: [&str; 10] = ["", "", "twentieth", "thirtieth", "", "", "", "", "", ""];

/// Lowercase words, hyphens split ("sixty-six" → "sixty", "six"), punctuation dropped except ':'.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| {
            c.is_whitespace() || c == '-' || c == ',' || c == '.' || c == '?' || c == '!'
        })
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != ':' && c != '\'')
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn word_value(w: &str) -> Option<(u32, bool)> {
    let find = |list: &[&str]| {
        list.iter()
            .position(|x| !x.is_empty() && *x == w)
            .map(|i| i as u32)
    };
    find(&ONES)
        .map(|v| (v, false))
        .or_else(|| find(&TEENS).map(|v| (v + 10, false)))
        .or_else(|| find(&TENS).map(|v| (v * 10, true)))
        .or_else(|| find(&ONES_TH).map(|v| (v, false)))
        .or_else(|| find(&TEENS_TH).map(|v| (v + 10, false)))
        .or_else(|| find(&TENS_TH).map(|v| (v * 10, false)))
        .or_else(|| (w == "oh").then_some((0, true)))
}

/// A number below 100 from `ws[i..]` ("twenty first", "4th", "85", "sixty six"); value and words used.
fn small_number(ws: &[String], i: usize) -> Option<(u32, usize)> {
    let w = ws.get(i)?;
    let digits: String = w.chars().take_while(char::is_ascii_digit).collect();
    if !digits.is_empty() {
        return digits.parse().ok().map(|v| (v, 1));
    }
    let (v, tens) = word_value(w)?;
    if tens {
        if let Some((u, _)) = ws
            .get(i + 1)
            .and_then(|n| word_value(n))
            .filter(|(u, _)| *u < 10)
        {
            return Some((v + u, 2));
        }
    }
    Some((v, 1))
}

/// A year: "1985", "nineteen eighty five", "nineteen oh five", "two thousand and three".
fn year(ws: &[String], i: usize) -> Option<i32> {
    let w = ws.get(i)?;
    if w.len() == 4 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.parse().ok();
    }
    if w == "two" && ws.get(i + 1).map(String::as_str) == Some("thousand") {
        let j = if ws.get(i + 2).map(String::as_str) == Some("and") {
            i + 3
        } else {
            i + 2
        };
        return Some(2000 + small_number(ws, j).map_or(0, |(v, _)| v) as i32);
    }
    let (hi, used) = small_number(ws, i)?;
    let (lo, _) = small_number(ws, i + used)?;
    ((10..=20).contains(&hi) && lo < 100).then_some((hi * 100 + lo) as i32)
}

/// A date of birth: an ISO date, or a month name with a day and a year around it.
pub fn date_of_birth(text: &str) -> Option<Date> {
    if let Some(d) = iso_date(text) {
        return Some(d);
    }
    let ws = words(text);
    let (mi, month) = month_word(&ws)?;
    // "March fourth, 1985" or "the fourth of March 1985".
    if let Some((day, used)) = small_number(&ws, mi + 1) {
        if let Some(y) = year(&ws, mi + 1 + used) {
            return Date::new(y, month, day);
        }
    }
    let before = if mi >= 2 && ws[mi - 1] == "of" {
        mi - 2
    } else {
        mi.checked_sub(1)?
    };
    let start =
        if before >= 1 && small_number(&ws, before - 1).is_some_and(|(v, n)| n == 2 && v > 20) {
            before - 1
        } else {
            before
        };
    let (day, _) = small_number(&ws, start)?;
    Date::new(year(&ws, mi + 1)?, month, day)
}

fn iso_date(text: &str) -> Option<Date> {
    text.char_indices()
        .filter(|(_, c)| c.is_ascii_digit())
        .find_map(|(i, _)| text.get(i..i + 10).and_then(Date::parse_iso))
}

/// A full name after "my name is" (any case), or after "this is" / "I'm" / "I am" when the words
/// are capitalised (so "I'm looking for..." is not a name). Up to three words.
pub fn name(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let stop = [
        "born", "and", "date", "my", "dob", "calling", "i", "here", "from", "on",
    ];
    [
        ("my name is ", false),
        ("name's ", false),
        ("this is ", true),
        ("i'm ", true),
        ("i am ", true),
    ]
    .iter()
    .filter_map(|(k, caps)| {
        let at = lower.find(k)? + k.len();
        let parts: Vec<&str> = text
            .get(at..)?
            .split([',', '.', ';'])
            .next()?
            .split_whitespace()
            .take_while(|w| !stop.contains(&w.to_lowercase().as_str()))
            .take_while(|w| !caps || w.starts_with(|c: char| c.is_uppercase()))
            .take(3)
            .collect();
        (parts.len() >= 2).then(|| parts.join(" "))
    })
    .next()
}

/// The day a caller asks for, relative to `today`: ISO date, "today", "tomorrow", or a weekday
/// name (its next occurrence after today).
pub fn day(text: &str, today: Date) -> Option<Date> {
    if let Some(d) = iso_date(text) {
        return Some(d);
    }
    let ws = words(text);
    if ws.iter().any(|w| w == "tomorrow") {
        return Some(today.add_days(1));
    }
    if let Some(wd) = ws.iter().find_map(|w| WEEKDAYS.iter().position(|d| d == w)) {
        let ahead = (wd as i64 - i64::from(today.weekday())).rem_euclid(7);
        return Some(today.add_days(if ahead == 0 { 7 } else { ahead }));
    }
    ws.iter().any(|w| w == "today").then_some(today)
}

/// Whether the caller leaves the day open ("the next available morning", "as soon as possible"):
/// the receptionist then searches from tomorrow for the first day that fits.
pub fn flexible_day(text: &str) -> bool {
    let t = words(text).join(" ");
    [
        "next available",
        "first available",
        "next free",
        "first free",
        "as soon as possible",
    ]
    .iter()
    .any(|k| t.contains(k))
}

/// A clock time as "HH:MM" ("nine thirty", "9:30", "half past ten", "2pm", "ten o'clock").
pub fn time(text: &str) -> Option<String> {
    let ws = words(text);
    for i in 0..ws.len() {
        if let Some(t) = time_at(&ws, i) {
            return Some(t);
        }
    }
    None
}

fn time_at(ws: &[String], i: usize) -> Option<String> {
    let w = &ws[i];
    let (mut h, mut m, used) = if let Some((a, b)) = w.split_once(':') {
        let b: String = b.chars().take(2).collect();
        (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?, 1)
    } else if w == "half" && ws.get(i + 1).map(String::as_str) == Some("past") {
        (small_number(ws, i + 2)?.0, 30, 3)
    } else if w == "quarter" && ws.get(i + 1).map(String::as_str) == Some("past") {
        (small_number(ws, i + 2)?.0, 15, 3)
    } else {
        let (h, n) = small_number(ws, i)?;
        let next = ws.get(i + n).map(String::as_str);
        let explicit = matches!(next, Some("o'clock" | "am" | "pm" | "a.m" | "p.m"))
            || w.ends_with("am")
            || w.ends_with("pm");
        match small_number(ws, i + n) {
            Some((m, k)) if [0, 15, 30, 45].contains(&m) && ws[i + n] != "oh" => (h, m, n + k),
            _ if explicit => (h, 0, n),
            _ => return None,
        }
    };
    let after = ws.get(i + used).map(String::as_str).unwrap_or("");
    if (after == "pm" || after == "p.m" || w.ends_with("pm")) && h < 12 || (1..=7).contains(&h) {
        h += 12;
    }
    if h > 23 || m > 59 {
        return None;
    }
    m -= m % 15;
    Some(format!("{h:02}:{m:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_roundtrip() {
        let d = Date::new(2026, 11, 23).unwrap();
        assert_eq!(Date::from_days(d.to_days()), d);
        assert_eq!(d.weekday(), 0, "2026-11-23 is a Monday");
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(d.add_days(40).to_string(), "2027-01-02");
    }

    #[test]
    fn names_and_birthdays() {
        let t = "My name is Emma Johnson, born March fourth, nineteen eighty five";
        assert_eq!(name(t).as_deref(), Some("Emma Johnson"));
        assert_eq!(date_of_birth(t), Date::new(1985, 3, 4));
        // The fixture caller (tests/fixtures/speech/lines.txt), seeded patient 4.
        let t = "My name is Noah Fischer, born April twenty second, nineteen seventy nine.";
        assert_eq!(name(t).as_deref(), Some("Noah Fischer"));
        assert_eq!(date_of_birth(t), Date::new(1979, 4, 22));
        assert_eq!(
            date_of_birth("born the twenty first of June 2001"),
            Date::new(2001, 6, 21)
        );
        assert_eq!(date_of_birth("dob 1966-11-15"), Date::new(1966, 11, 15));
        assert_eq!(
            date_of_birth("November fifteenth nineteen sixty-six"),
            Date::new(1966, 11, 15)
        );
        assert_eq!(
            date_of_birth("born May 5th two thousand and three"),
            Date::new(2003, 5, 5)
        );
        assert_eq!(
            name("Hi, I'm Liam O'Brien and I need help").as_deref(),
            Some("Liam O'Brien")
        );
        assert_eq!(name("I need a doctor"), None);
    }

    #[test]
    fn days_and_times() {
        let mon = Date::new(2026, 11, 23).unwrap();
        assert_eq!(day("tomorrow please", mon), Date::new(2026, 11, 24));
        assert_eq!(day("on Wednesday", mon), Date::new(2026, 11, 25));
        assert_eq!(day("next monday", mon), Date::new(2026, 11, 30));
        assert_eq!(day("hello", mon), None);
        assert!(flexible_day(
            "The next available morning at nine thirty, please."
        ));
        assert!(flexible_day("as soon as possible"));
        assert!(!flexible_day("next Monday"));
        assert_eq!(mon.weekday_name(), "Monday");
        assert_eq!(mon.add_days(6).weekday_name(), "Sunday");
        assert_eq!(time("nine thirty works").as_deref(), Some("09:30"));
        assert_eq!(time("yes, 10:00 please").as_deref(), Some("10:00"));
        assert_eq!(time("half past two").as_deref(), Some("14:30"));
        assert_eq!(time("at 3pm").as_deref(), Some("15:00"));
        assert_eq!(time("eleven o'clock").as_deref(), Some("11:00"));
        assert_eq!(time("yes book it"), None);
        assert_eq!(
            time("The next available morning at nine thirty, please.").as_deref(),
            Some("09:30")
        );
        assert_eq!(
            time("My name is Noah Fischer, born April twenty second, nineteen seventy nine"),
            None
        );
    }
}
