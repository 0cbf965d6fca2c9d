-- The hospital, for the embedded SQLite store. SQLite has no exclusion constraints or range
-- types, so two triggers refuse an overlapping scheduled appointment of one doctor inside the
-- writing statement itself (SQLite runs one writer at a time, so the check cannot race).
-- Timestamps are UTC text in one fixed-width RFC 3339 form (YYYY-MM-DDTHH:MM:SS.ffffffZ), so
-- comparing the text compares the instants.
CREATE TABLE patients (
    id            INTEGER PRIMARY KEY,
    first_name    TEXT NOT NULL CHECK (length(first_name) BETWEEN 1 AND 100),
    last_name     TEXT NOT NULL CHECK (length(last_name) BETWEEN 1 AND 100),
    date_of_birth TEXT NOT NULL CHECK (date(date_of_birth) IS NOT NULL),
    phone         TEXT NOT NULL CHECK (length(phone) BETWEEN 3 AND 32),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT patients_identity_key UNIQUE (first_name, last_name, date_of_birth)
);
CREATE INDEX patients_full_name_idx ON patients (lower(first_name || ' ' || last_name));
CREATE INDEX patients_phone_idx ON patients (phone);

CREATE TABLE doctors (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    specialty TEXT NOT NULL CHECK (length(specialty) BETWEEN 1 AND 100)
);
CREATE INDEX doctors_specialty_idx ON doctors (lower(specialty));

CREATE TABLE doctor_shifts (
    id         INTEGER PRIMARY KEY,
    doctor_id  INTEGER NOT NULL REFERENCES doctors (id) ON DELETE CASCADE,
    -- ISO weekday: 1 = Monday … 7 = Sunday.
    weekday    INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time TEXT NOT NULL CHECK (time(start_time) = start_time),
    end_time   TEXT NOT NULL CHECK (time(end_time) = end_time),
    CONSTRAINT doctor_shifts_end_after_start CHECK (end_time > start_time),
    CONSTRAINT doctor_shifts_once UNIQUE (doctor_id, weekday, start_time)
);

CREATE TABLE appointments (
    id         INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    doctor_id  INTEGER NOT NULL REFERENCES doctors (id),
    starts_at  TEXT NOT NULL CHECK (length(starts_at) = 27),
    ends_at    TEXT NOT NULL CHECK (length(ends_at) = 27),
    status     TEXT NOT NULL DEFAULT 'scheduled'
               CHECK (status IN ('scheduled', 'completed', 'cancelled', 'no_show')),
    reason     TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT appointments_duration CHECK (
        ends_at > starts_at AND julianday(ends_at) - julianday(starts_at) <= 240.0 / 1440.0 + 1e-9)
);
CREATE INDEX appointments_doctor_time_idx ON appointments (doctor_id, starts_at);
CREATE INDEX appointments_patient_idx ON appointments (patient_id, starts_at);

CREATE TRIGGER appointments_no_double_booking_insert BEFORE INSERT ON appointments
WHEN NEW.status = 'scheduled' AND EXISTS (
    SELECT 1 FROM appointments a
     WHERE a.doctor_id = NEW.doctor_id AND a.status = 'scheduled'
       AND a.starts_at < NEW.ends_at AND NEW.starts_at < a.ends_at)
BEGIN
    SELECT RAISE(ABORT, 'appointments_no_double_booking');
END;

CREATE TRIGGER appointments_no_double_booking_update
BEFORE UPDATE OF doctor_id, starts_at, ends_at, status ON appointments
WHEN NEW.status = 'scheduled' AND EXISTS (
    SELECT 1 FROM appointments a
     WHERE a.id <> NEW.id AND a.doctor_id = NEW.doctor_id AND a.status = 'scheduled'
       AND a.starts_at < NEW.ends_at AND NEW.starts_at < a.ends_at)
BEGIN
    SELECT RAISE(ABORT, 'appointments_no_double_booking');
END;
