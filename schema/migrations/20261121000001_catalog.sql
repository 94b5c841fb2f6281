-- Catalog: terms, departments, courses, sections and their weekly meetings.
-- Written for MySQL 8.0.16+ and MariaDB 10.11 alike: InnoDB, utf8mb4, CHECK
-- constraints (enforced by both), no vendor-only types.

CREATE TABLE terms (
    id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
    code        VARCHAR(16)  NOT NULL,
    name        VARCHAR(100) NOT NULL,
    starts_on   DATE         NOT NULL,
    ends_on     DATE         NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_terms_code (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE departments (
    id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
    code        VARCHAR(16)  NOT NULL,
    name_ko     VARCHAR(100) NOT NULL,
    name_en     VARCHAR(100) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_departments_code (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE courses (
    id             INT UNSIGNED NOT NULL AUTO_INCREMENT,
    term_id        INT UNSIGNED NOT NULL,
    department_id  INT UNSIGNED NOT NULL,
    code           VARCHAR(16)  NOT NULL,
    title_ko       VARCHAR(200) NOT NULL,
    title_en       VARCHAR(200) NOT NULL,
    credits        TINYINT UNSIGNED NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_courses_term_code (term_id, code),
    KEY ix_courses_department (department_id),
    CONSTRAINT fk_courses_term FOREIGN KEY (term_id) REFERENCES terms (id),
    CONSTRAINT fk_courses_department FOREIGN KEY (department_id) REFERENCES departments (id),
    CONSTRAINT ck_courses_credits CHECK (credits BETWEEN 0 AND 12)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A prerequisite names a course code: the student must have completed a
-- course with that code in any earlier term.
CREATE TABLE course_prerequisites (
    course_id      INT UNSIGNED NOT NULL,
    required_code  VARCHAR(16)  NOT NULL,
    PRIMARY KEY (course_id, required_code),
    CONSTRAINT fk_prereq_course FOREIGN KEY (course_id) REFERENCES courses (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- `enrolled` is the seat count the worker maintains under the section row
-- lock; the CHECK is the database's last line against overselling.
CREATE TABLE sections (
    id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
    course_id   INT UNSIGNED NOT NULL,
    number      SMALLINT UNSIGNED NOT NULL,
    capacity    INT UNSIGNED NOT NULL,
    enrolled    INT UNSIGNED NOT NULL DEFAULT 0,
    instructor  VARCHAR(100) NOT NULL DEFAULT '',
    room        VARCHAR(50)  NOT NULL DEFAULT '',
    closed      BOOLEAN      NOT NULL DEFAULT FALSE,
    PRIMARY KEY (id),
    UNIQUE KEY uq_sections_course_number (course_id, number),
    CONSTRAINT fk_sections_course FOREIGN KEY (course_id) REFERENCES courses (id),
    CONSTRAINT ck_sections_seats CHECK (enrolled <= capacity)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Weekly meetings: weekday 1 = Monday .. 7 = Sunday, times in minutes after
-- midnight in the university's time zone. [start, end) so touching meetings
-- do not overlap.
CREATE TABLE section_meetings (
    id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
    section_id  INT UNSIGNED NOT NULL,
    weekday     TINYINT UNSIGNED NOT NULL,
    start_min   SMALLINT UNSIGNED NOT NULL,
    end_min     SMALLINT UNSIGNED NOT NULL,
    PRIMARY KEY (id),
    KEY ix_meetings_section (section_id),
    CONSTRAINT fk_meetings_section FOREIGN KEY (section_id) REFERENCES sections (id) ON DELETE CASCADE,
    CONSTRAINT ck_meetings_weekday CHECK (weekday BETWEEN 1 AND 7),
    CONSTRAINT ck_meetings_span CHECK (start_min < end_min AND end_min <= 1440)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
