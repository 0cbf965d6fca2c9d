//! `frontdesk seed`: the seed hospital (`frontdesk_actors::seed`) upserted by natural key, so a
//! second run changes nothing.

use tokio_postgres::GenericClient;

use frontdesk_actors::seed;

/// Rows in each seeded table after seeding (for the command's report and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedCounts {
    pub doctors: i64,
    pub shifts: i64,
    pub patients: i64,
}

pub async fn run(c: &mut tokio_postgres::Client) -> Result<SeedCounts, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    for d in seed::doctors() {
        tx.execute(
            "INSERT INTO doctors (id, name, specialty) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&d.id, &d.name, &d.specialty],
        )
        .await?;
    }
    for s in seed::shifts() {
        let weekday = i16::try_from(s.weekday.number_from_monday()).unwrap_or(1);
        tx.execute(
            "INSERT INTO doctor_shifts (doctor_id, weekday, start_time, end_time)
             VALUES ($1, $2, $3, $4) ON CONFLICT (doctor_id, weekday, start_time) DO NOTHING",
            &[&s.doctor_id, &weekday, &s.start, &s.end],
        )
        .await?;
    }
    for p in seed::patients() {
        tx.execute(
            "INSERT INTO patients (id, first_name, last_name, date_of_birth, phone)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &p.id,
                &p.first_name,
                &p.last_name,
                &p.date_of_birth,
                &p.phone,
            ],
        )
        .await?;
    }
    // Explicit ids bypassed the identity sequences; move them past the seed.
    for table in ["doctors", "doctor_shifts", "patients"] {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        );
        tx.execute(&sql, &[]).await?;
    }
    tx.commit().await?;
    counts(&*c).await
}

pub async fn counts(c: &impl GenericClient) -> Result<SeedCounts, tokio_postgres::Error> {
    let mut n = [0i64; 3];
    for (slot, table) in n.iter_mut().zip(["doctors", "doctor_shifts", "patients"]) {
        *slot = c
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0);
    }
    Ok(SeedCounts {
        doctors: n[0],
        shifts: n[1],
        patients: n[2],
    })
}
