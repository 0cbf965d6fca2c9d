DROP TRIGGER IF EXISTS appointments_no_double_booking_update;
DROP TRIGGER IF EXISTS appointments_no_double_booking_insert;
DROP TABLE IF EXISTS appointments;
DROP TABLE IF EXISTS doctor_shifts;
DROP TABLE IF EXISTS doctors;
DROP TABLE IF EXISTS patients;
