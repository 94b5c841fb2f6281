//! The registrar pages' messages, each in Korean and English side by side,
//! so neither language can be forgotten and a reviewer sees both at once.

use super::Lang;

/// A page string in both languages.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub ko: &'static str,
    pub en: &'static str,
}

impl Text {
    /// The string in `lang`.
    pub fn get(self, lang: Lang) -> &'static str {
        lang.t(self.ko, self.en)
    }
}

const fn text(ko: &'static str, en: &'static str) -> Text {
    Text { ko, en }
}

// Shared by several forms.
pub const SAVED: Text = text("저장했습니다.", "Saved.");
pub const PICK_TERM: Text = text("학기를 고르세요.", "Pick a term.");
pub const NO_SUCH_TERM: Text = text("없는 학기입니다.", "No such term.");

// Rounds: the create and schedule forms, and the controls.
pub const ROUND_NAME: Text = text(
    "이름은 1-100자입니다.",
    "A name of 1-100 characters is required.",
);
pub const YEARS: Text = text(
    "학년은 1,2 또는 1-4처럼 입력하세요 (1-8).",
    "Enter years like 1,2 or 1-4 (1 to 8).",
);
pub const DATE_TIME: Text = text("날짜와 시각을 입력하세요.", "Enter a date and time.");
pub const PREQUEUE_BEFORE_OPEN: Text = text(
    "사전 대기는 열리기 전이어야 합니다.",
    "The pre-queue must start before the room opens.",
);
pub const CLOSE_AFTER_OPEN: Text = text(
    "마감은 열린 뒤여야 합니다.",
    "The close must come after the open.",
);
pub const RATE: Text = text(
    "분당 0에서 1,000,000 사이의 숫자입니다.",
    "A number from 0 to 1,000,000 per minute.",
);
pub const CAP: Text = text(
    "0(제한 없음) 이상의 숫자입니다.",
    "A number; 0 or empty means no cap.",
);
pub const SCHEDULE_LOCKED: Text = text(
    "열린 뒤에는 일정을 바꿀 수 없습니다.",
    "The schedule cannot change once the round has opened.",
);
pub const UNKNOWN_ACTION: Text = text("알 수 없는 동작입니다.", "Unknown action.");
pub const NOTHING_TO_CHANGE: Text = text("바꿀 값을 입력하세요.", "Enter something to change.");
pub const START_PREQUEUE: Text = text("사전 대기 시작", "Start pre-queue");
pub const OPEN_NOW: Text = text("지금 열기", "Open now");
pub const CLOSE: Text = text("마감", "Close");
pub const PAUSE: Text = text("일시 정지", "Pause");
pub const RESUME: Text = text("재개", "Resume");

// A student's timeline.
pub const DIGITS_ONLY: Text = text(
    "학번은 숫자만 입력하세요.",
    "A student number has digits only.",
);
pub const NO_SUCH_STUDENT: Text = text(
    "그런 학번의 학생이 없습니다.",
    "No student has that number.",
);
pub const JOINED: Text = text("대기열 입장", "Joined the queue");
pub const ORDER_KEY: Text = text("순서 키", "order key");
pub const PREQUEUE_NOTE: Text = text("(사전 대기)", "(pre-queue)");
pub const ADMITTED: Text = text("입장 허가", "Admitted");
pub const SKIPPED: Text = text(
    "응답 없음으로 건너뜀 (마지막 응답)",
    "Skipped: stopped polling (last seen)",
);
pub const LEFT: Text = text("대기 취소 (마지막 응답)", "Left the queue (last seen)");
pub const ISSUED: Text = text("요청", "issued");
pub const DECIDED_BY: Text = text("처리", "by");

// Courses.
pub const SEARCH_LENGTH: Text = text("검색어는 100자 이하입니다.", "Use at most 100 characters.");
pub const PAGE_NUMBER: Text = text("쪽 번호가 올바르지 않습니다.", "Not a valid page number.");
pub const COURSE_CODE: Text = text(
    "과목 코드는 1-16자의 영문/숫자입니다.",
    "A course code is 1-16 letters or digits.",
);
pub const TITLE_LENGTH: Text = text("1-200자로 입력하세요.", "Enter 1-200 characters.");
pub const CREDITS: Text = text("학점은 0에서 12 사이입니다.", "Credits are 0 to 12.");
pub const PICK_DEPARTMENT: Text = text("학과를 고르세요.", "Pick a department.");
pub const NOT_A_COURSE_CODE: Text = text("과목 코드가 아닙니다.", "not a course code.");
pub const DUPLICATE_COURSE: Text = text(
    "이 학기에 같은 코드의 과목이 있습니다.",
    "This term already has a course with that code.",
);

// Sections.
pub const SECTION_NUMBER: Text = text(
    "분반은 1에서 999 사이입니다.",
    "A section number is 1 to 999.",
);
pub const CAPACITY: Text = text(
    "정원은 0 이상의 숫자입니다.",
    "Capacity is a whole number, 0 or more.",
);
pub const AT_MOST_100: Text = text("100자 이하로 입력하세요.", "At most 100 characters.");
pub const AT_MOST_50: Text = text("50자 이하로 입력하세요.", "At most 50 characters.");
pub const MEETINGS_EXAMPLE: Text = text(
    "예: Mon 09:00-10:15; Wed 09:00-10:15 —",
    "e.g. Mon 09:00-10:15; Wed 09:00-10:15 —",
);
pub const DUPLICATE_SECTION: Text = text(
    "같은 번호의 분반이 있습니다.",
    "That section number exists.",
);
pub const BELOW_ENROLLED: Text = text(
    "이미 신청한 학생 수보다 작게 줄일 수 없습니다",
    "Cannot go below the students already enrolled",
);

// CSV import.
pub const IMPORT_TOO_LONG: Text = text(
    "가져오기가 너무 오래 걸려 모두 취소했습니다. 파일을 나눠서 다시 시도하세요.",
    "The import took too long and was rolled back. Split the file and try again.",
);
pub const IMPORT_DB_ERROR: Text = text(
    "데이터베이스 오류로 아무것도 가져오지 않았습니다. 잠시 후 다시 시도하세요.",
    "A database error stopped the import; nothing was imported. Try again shortly.",
);
pub const PACE_INVALID: Text = text(
    "자동 속도에는 0 이상 1,000,000 이하의 최저·최고 속도(최저 ≤ 최고)와 0보다 큰 목표값이 필요합니다.",
    "Automatic pace needs a floor and a ceiling between 0 and 1,000,000 a minute (floor ≤ ceiling) and targets above zero.",
);
pub const RATE_IS_AUTOMATIC: Text = text(
    "속도가 자동으로 조절되는 중입니다. 고정 속도로 바꾼 뒤 입력하세요.",
    "The pace is automatic; switch to a fixed rate to set one.",
);
pub const PACE_BACKLOG: Text = text("워커 처리 지연: 대기 명령", "Workers behind: backlog");
pub const PACE_LATENCY: Text = text(
    "워커 처리 지연: 처리 시간(ms)",
    "Workers behind: decision latency (ms)",
);
pub const PACE_HEALTHY: Text = text("워커 여유: 속도 올림", "Workers keep up: climbing");
pub const PACE_STEADY: Text = text("목표 근처: 유지", "Near the targets: holding");
pub const PACE_UNKNOWN: Text = text("측정 불가: 유지", "Nothing measured: holding");
