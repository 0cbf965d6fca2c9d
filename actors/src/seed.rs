//! The seed hospital, as data: every store (in-memory, PostgreSQL, SQLite) loads exactly this, so
//! simulations and tests behave the same on each.

use chrono::{NaiveDate, NaiveTime, Weekday};

pub struct SeedDoctor {
    pub id: i64,
    pub name: &'static str,
    pub specialty: &'static str,
}

pub struct SeedShift {
    pub doctor_id: i64,
    pub weekday: Weekday,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

pub struct SeedPatient {
    pub id: i64,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub date_of_birth: NaiveDate,
    pub phone: String,
}

/// Six doctors (ids 1–6); doctors 2–4 also work Saturday mornings.
const DOCTORS: [(&str, &str, bool); 6] = [
    ("Dr. Amelia Hart", "Cardiology", false),
    ("Dr. Rajesh Patel", "Dermatology", true),
    ("Dr. Sofia Moreno", "General Practice", true),
    ("Dr. Kenji Tanaka", "Paediatrics", true),
    ("Dr. Grace Okafor", "Orthopaedics", false),
    ("Dr. Lukas Weber", "Neurology", false),
];

/// Synthetic patients; the apostrophe in O'Brien keeps quote handling honest.
const PATIENTS: &str = "Olivia Bennett;Liam O'Brien;Emma Nguyen;Noah Fischer;Ava Kowalski;\
    Elijah Santos;Sophia Haddad;James Lindqvist;Isabella Mensah;Lucas Romano;Mia Chen;\
    Mason Dubois;Charlotte Ivanova;Ethan Murphy;Amelia Yilmaz;Logan Costa;Harper Sato;\
    Benjamin Adeyemi;Evelyn Novak;Henry Garcia";

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

pub fn doctors() -> Vec<SeedDoctor> {
    (1..)
        .zip(DOCTORS)
        .map(|(id, (name, specialty, _))| SeedDoctor {
            id,
            name,
            specialty,
        })
        .collect()
}

/// Weekdays 09:00–17:00 UTC for everyone, Saturday 09:00–13:00 for some.
pub fn shifts() -> Vec<SeedShift> {
    let week = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    let mut out = vec![];
    for (doctor_id, (_, _, saturday)) in (1..).zip(DOCTORS) {
        for weekday in week {
            out.push(SeedShift {
                doctor_id,
                weekday,
                start: hm(9, 0),
                end: hm(17, 0),
            });
        }
        if saturday {
            out.push(SeedShift {
                doctor_id,
                weekday: Weekday::Sat,
                start: hm(9, 0),
                end: hm(13, 0),
            });
        }
    }
    out
}

/// Twenty patients (ids 1–20), birthdays spread over 1940–2019 so paediatrics has children.
pub fn patients() -> Vec<SeedPatient> {
    let names = PATIENTS.split(';').filter_map(|n| n.trim().split_once(' '));
    (0u16..)
        .zip(names)
        .map(|(i, (first_name, last_name))| {
            let (y, m, d) = (1940 + i * 13 % 80, 1 + i * 5 % 12, 1 + i * 7 % 28);
            SeedPatient {
                id: i64::from(i) + 1,
                first_name,
                last_name,
                date_of_birth: NaiveDate::from_ymd_opt(y.into(), m.into(), d.into())
                    .unwrap_or_default(),
                phone: format!("+1555010{:04}", i + 1),
            }
        })
        .collect()
}
