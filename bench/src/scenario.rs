//! The people and the catalog of a surge: who the students are, which
//! sections exist, and the round they queue for.
//!
//! Locally the bench seeds its own database with the deterministic seed
//! generator, then makes it bench-shaped: every section gets `--seats`
//! seats, and passwords are re-hashed with deliberately cheap Argon2
//! parameters so that thousands of students can sign in through the API in
//! seconds on two cores (bench data only; see decision 041). Against a
//! deployment, the same generator tells the bench the seeded student
//! numbers and section ids without asking the database.

use anyhow::Context;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use schema::seed::{SeedConfig, DEMO_ADMINS, DEMO_STUDENT_PASSWORD};
use sqlx::MySqlPool;
use std::collections::HashMap;

/// Argon2id with 256 KiB, one pass, one lane: about a millisecond. The
/// gateway reads the parameters from the stored hash, so it verifies these
/// as it verifies production ones.
const BENCH_ARGON2: (u32, u32, u32) = (256, 1, 1);

/// A student the bench plays.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: u32,
    pub number: String,
    pub class_year: u8,
}

/// Who takes part and what they can choose from.
#[derive(Debug, Clone, Default)]
pub struct Population {
    pub students: Vec<Person>,
    pub sections: Vec<u32>,
    /// The course of each section in `sections` (alternates are other
    /// sections of an item's course).
    pub course_of: HashMap<u32, u32>,
}

impl Population {
    /// The other sections of `section`'s course among `sections`, by id.
    pub fn siblings(&self, section: u32) -> Vec<u32> {
        let Some(course) = self.course_of.get(&section) else {
            return Vec::new();
        };
        let mut v: Vec<u32> = self
            .sections
            .iter()
            .copied()
            .filter(|s| *s != section && self.course_of.get(s) == Some(course))
            .collect();
        v.sort_unstable();
        v
    }
}

/// Hashes `password` with the bench's cheap parameters.
pub fn cheap_hash(password: &str) -> anyhow::Result<String> {
    let (m, t, p) = BENCH_ARGON2;
    let params = Params::new(m, t, p, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))
}

/// Seeds an empty bench database: `students` students, `sections`
/// sections of `seats` seats each, cheap password hashes.
pub async fn seed_local(
    pool: &MySqlPool,
    seed: u64,
    students: u32,
    sections: u32,
    seats: u32,
) -> anyhow::Result<Population> {
    let config = SeedConfig {
        seed,
        students,
        sections,
    };
    schema::seed::seed(pool, &config)
        .await
        .context("seeding the bench database")?;
    sqlx::query("UPDATE sections SET capacity = ?")
        .bind(seats)
        .execute(pool)
        .await?;
    let student_hash = tokio::task::spawn_blocking(|| cheap_hash(DEMO_STUDENT_PASSWORD)).await??;
    sqlx::query("UPDATE students SET password_hash = ?")
        .bind(student_hash)
        .execute(pool)
        .await?;
    for admin in DEMO_ADMINS {
        let hash = tokio::task::spawn_blocking(move || cheap_hash(admin.password)).await??;
        sqlx::query("UPDATE admins SET password_hash = ? WHERE username = ?")
            .bind(hash)
            .bind(admin.username)
            .execute(pool)
            .await?;
    }
    let students = sqlx::query_as::<_, (u32, String, u8)>(
        "SELECT id, number, class_year FROM students ORDER BY id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, number, class_year)| Person {
        id,
        number,
        class_year,
    })
    .collect();
    let rows: Vec<(u32, u32)> = sqlx::query_as("SELECT id, course_id FROM sections ORDER BY id")
        .fetch_all(pool)
        .await?;
    Ok(Population {
        students,
        sections: rows.iter().map(|r| r.0).collect(),
        course_of: rows.into_iter().collect(),
    })
}

/// A round for every class year of the seeded term. With `opens_in`, it
/// starts in the pre-queue and opens after that long; otherwise it is open.
pub async fn round(
    pool: &MySqlPool,
    rate_per_min: u32,
    opens_in: Option<std::time::Duration>,
) -> anyhow::Result<u32> {
    let (state, opens_ms) = match opens_in {
        Some(d) => ("prequeue", i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        None => ("open", -60_000),
    };
    let id = sqlx::query(
        "INSERT INTO rounds (term_id, name, eligible_years_mask, prequeue_at, opens_at, closes_at, \
                             state, admission_per_min) \
         SELECT id, 'Bench surge', 15, NOW(3) - INTERVAL 1 HOUR, \
                NOW(3) + INTERVAL (? * 1000) MICROSECOND, NOW(3) + INTERVAL 1 DAY, ?, ? \
         FROM terms ORDER BY id LIMIT 1",
    )
    .bind(opens_ms)
    .bind(state)
    .bind(rate_per_min)
    .execute(pool)
    .await
    .context("creating the bench round")?
    .last_insert_id();
    u32::try_from(id).context("round id")
}

/// The students and sections a deployment seeded with `config` has,
/// computed by the same generator (`sluice-db seed` with the same flags).
pub fn remote(config: &SeedConfig, students: usize, sections: usize) -> Population {
    let catalog = schema::seed::generate(config);
    Population {
        students: catalog
            .students
            .into_iter()
            .take(students)
            .map(|s| Person {
                id: s.id,
                number: s.number,
                class_year: s.class_year,
            })
            .collect(),
        sections: catalog
            .sections
            .iter()
            .take(sections)
            .map(|s| s.id)
            .collect(),
        course_of: catalog
            .sections
            .iter()
            .take(sections)
            .map(|s| (s.id, s.course_id))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn cheap_hashes_carry_their_parameters_and_verify_with_the_default_verifier() {
        let hash = cheap_hash("sluice-demo").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{hash}");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default()
            .verify_password(b"sluice-demo", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
    }

    #[test]
    fn remote_populations_come_from_the_seed_generator() {
        let config = SeedConfig {
            seed: 42,
            students: 500,
            sections: 60,
        };
        let p = remote(&config, 100, 50);
        assert_eq!(p.students.len(), 100);
        assert_eq!(p.sections.len(), 50);
        assert_eq!(p.students[0].id, 1);
        // Alternates come from the same course: the generator gives many
        // courses more than one section.
        let with = p.sections.iter().find(|s| !p.siblings(**s).is_empty());
        let s = *with.expect("some course has two sections among the first 50");
        for other in p.siblings(s) {
            assert_ne!(other, s);
            assert_eq!(p.course_of[&other], p.course_of[&s]);
        }
    }
}
