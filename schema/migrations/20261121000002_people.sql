-- Students, their transcripts, and registrar/ops accounts.

CREATE TABLE students (
    id             INT UNSIGNED NOT NULL AUTO_INCREMENT,
    number         VARCHAR(16)  NOT NULL,
    name           VARCHAR(100) NOT NULL,
    class_year     TINYINT UNSIGNED NOT NULL,
    department_id  INT UNSIGNED NULL,
    max_credits    TINYINT UNSIGNED NOT NULL DEFAULT 18,
    password_hash  VARCHAR(255) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_students_number (number),
    CONSTRAINT fk_students_department FOREIGN KEY (department_id) REFERENCES departments (id),
    CONSTRAINT ck_students_year CHECK (class_year BETWEEN 1 AND 8)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Course codes a student has passed in earlier terms (for prerequisites).
CREATE TABLE student_completed_courses (
    student_id   INT UNSIGNED NOT NULL,
    course_code  VARCHAR(16)  NOT NULL,
    PRIMARY KEY (student_id, course_code),
    CONSTRAINT fk_completed_student FOREIGN KEY (student_id) REFERENCES students (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE admins (
    id             INT UNSIGNED NOT NULL AUTO_INCREMENT,
    username       VARCHAR(64)  NOT NULL,
    display_name   VARCHAR(100) NOT NULL,
    role           VARCHAR(16)  NOT NULL,
    password_hash  VARCHAR(255) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_admins_username (username),
    CONSTRAINT ck_admins_role CHECK (role IN ('registrar', 'ops', 'viewer'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
