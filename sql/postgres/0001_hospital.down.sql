DROP TABLE appointments;
DROP TABLE doctor_shifts;
DROP TABLE doctors;
DROP TABLE patients;
