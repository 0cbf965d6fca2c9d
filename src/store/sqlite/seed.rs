//! The seed hospital on SQLite, inserted by natural key so a second run changes nothing.

use frontdesk_actors::seed;
use rusqlite::{params, Connection};

use crate::store::seed::SeedCounts;

pub fn run(c: &mut Connection) -> rusqlite::Result<SeedCounts> {
    let tx = c.transaction()?;
    for d in seed::doctors() {
        tx.execute(
            "INSERT INTO doctors (id, name, specialty) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![d.id, d.name, d.specialty],
        )?;
    }
    for s in seed::shifts() {
        tx.execute(
            "INSERT INTO doctor_shifts (doctor_id, weekday, start_time, end_time)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (doctor_id, weekday, start_time) DO NOTHING",
            params![s.doctor_id, s.weekday.number_from_monday(), s.start, s.end],
        )?;
    }
    for p in seed::patients() {
        tx.execute(
            "INSERT INTO patients (id, first_name, last_name, date_of_birth, phone)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![p.id, p.first_name, p.last_name, p.date_of_birth, p.phone],
        )?;
    }
    tx.commit()?;
    counts(c)
}

pub fn counts(c: &Connection) -> rusqlite::Result<SeedCounts> {
    let count = |table: &str| {
        // `table` is one of our literals below.
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
    };
    Ok(SeedCounts {
        doctors: count("doctors")?,
        shifts: count("doctor_shifts")?,
        patients: count("patients")?,
    })
}
