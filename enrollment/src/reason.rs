//! Stable rejection reasons. The code (`full`, `time_conflict`, ...) is part
//! of the contract: stored in outcomes, returned by the API, counted in
//! metrics. Messages are for people, in Korean and English.

use serde::{Deserialize, Serialize};

/// Why a command, or one item of a cart command, was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The command could not be decoded.
    Malformed,
    /// The pass's signature does not verify, or its key is unknown.
    PassInvalid,
    /// The pass had expired when the command was issued, or is too old.
    PassExpired,
    /// The pass belongs to another student or another round.
    PassMismatch,
    /// The pass has been used for more commands than it allows.
    PassExhausted,
    /// The admission the pass stood for is over: the student left the
    /// queue, or joined again and holds a newer place.
    PassRevoked,
    /// The round is not open (scheduled or closed) or does not exist.
    RoundClosed,
    /// The student's class year may not register in this round.
    NotEligible,
    /// The student does not exist.
    UnknownStudent,
    /// The section does not exist.
    UnknownSection,
    /// The section is closed to registration.
    SectionClosed,
    /// The student already holds a section of this course.
    AlreadyEnrolled,
    /// The section's meetings overlap one of the student's sections.
    TimeConflict,
    /// A prerequisite course has not been completed.
    PrerequisiteMissing,
    /// Enrolling would exceed the student's credit maximum.
    CreditLimit,
    /// No seat is free.
    Full,
    /// Drop: the student does not hold this section.
    NotEnrolled,
    /// Waitlist: the student is already waiting for this section.
    AlreadyWaitlisted,
    /// Leave the waitlist: the student is not waiting for this section
    /// (never joined, already left, or already promoted or passed over).
    NotWaitlisted,
    /// The command could not be decided (the section stayed locked, the
    /// database kept failing); nothing was changed. Stored with the
    /// outcome `failed`, never `rejected`.
    NotProcessed,
}

impl Reason {
    /// Every reason, for metrics and documentation.
    pub const ALL: [Reason; 20] = [
        Reason::Malformed,
        Reason::PassInvalid,
        Reason::PassExpired,
        Reason::PassMismatch,
        Reason::PassExhausted,
        Reason::PassRevoked,
        Reason::RoundClosed,
        Reason::NotEligible,
        Reason::UnknownStudent,
        Reason::UnknownSection,
        Reason::SectionClosed,
        Reason::AlreadyEnrolled,
        Reason::TimeConflict,
        Reason::PrerequisiteMissing,
        Reason::CreditLimit,
        Reason::Full,
        Reason::NotEnrolled,
        Reason::AlreadyWaitlisted,
        Reason::NotWaitlisted,
        Reason::NotProcessed,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::PassInvalid => "pass_invalid",
            Reason::PassExpired => "pass_expired",
            Reason::PassMismatch => "pass_mismatch",
            Reason::PassExhausted => "pass_exhausted",
            Reason::PassRevoked => "pass_revoked",
            Reason::RoundClosed => "round_closed",
            Reason::NotEligible => "not_eligible",
            Reason::UnknownStudent => "unknown_student",
            Reason::UnknownSection => "unknown_section",
            Reason::SectionClosed => "section_closed",
            Reason::AlreadyEnrolled => "already_enrolled",
            Reason::TimeConflict => "time_conflict",
            Reason::PrerequisiteMissing => "prerequisite_missing",
            Reason::CreditLimit => "credit_limit",
            Reason::Full => "full",
            Reason::NotEnrolled => "not_enrolled",
            Reason::AlreadyWaitlisted => "already_waitlisted",
            Reason::NotWaitlisted => "not_waitlisted",
            Reason::NotProcessed => "not_processed",
        }
    }

    /// Parses a stored code.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The message shown to a student reading Korean.
    pub fn message_ko(self) -> &'static str {
        match self {
            Reason::Malformed => "요청 형식이 올바르지 않습니다.",
            Reason::PassInvalid => "입장권이 유효하지 않습니다. 대기열에 다시 들어와 주세요.",
            Reason::PassExpired => "입장 시간이 만료되었습니다. 대기열에 다시 들어와 주세요.",
            Reason::PassMismatch => "다른 학생 또는 다른 차수의 입장권입니다.",
            Reason::PassExhausted => "이 입장권으로 보낼 수 있는 요청 수를 넘었습니다.",
            Reason::PassRevoked => {
                "대기열에서 나가 이 입장권은 더 이상 쓸 수 없습니다. 대기열에 다시 들어와 주세요."
            }
            Reason::RoundClosed => "지금은 수강신청 기간이 아닙니다.",
            Reason::NotEligible => "이번 차수에 신청할 수 있는 학년이 아닙니다.",
            Reason::UnknownStudent => "학생 정보를 찾을 수 없습니다.",
            Reason::UnknownSection => "존재하지 않는 분반입니다.",
            Reason::SectionClosed => "폐강되었거나 신청이 마감된 분반입니다.",
            Reason::AlreadyEnrolled => "이미 같은 과목의 다른 분반을 신청했습니다.",
            Reason::TimeConflict => "이미 신청한 과목과 시간이 겹칩니다.",
            Reason::PrerequisiteMissing => "선수과목을 이수하지 않았습니다.",
            Reason::CreditLimit => "최대 신청 학점을 초과합니다.",
            Reason::Full => "정원이 모두 찼습니다.",
            Reason::NotEnrolled => "신청하지 않은 분반입니다.",
            Reason::AlreadyWaitlisted => "이미 이 분반의 대기 명단에 있습니다.",
            Reason::NotWaitlisted => "이 분반의 대기 명단에 없습니다.",
            Reason::NotProcessed => {
                "시스템 문제로 요청을 처리하지 못했습니다. 바뀐 것은 없으니 다시 신청해 주세요."
            }
        }
    }

    /// The message shown to a student reading English.
    pub fn message_en(self) -> &'static str {
        match self {
            Reason::Malformed => "The request was not well formed.",
            Reason::PassInvalid => "Your admission pass is not valid. Please rejoin the queue.",
            Reason::PassExpired => "Your admission pass has expired. Please rejoin the queue.",
            Reason::PassMismatch => "This admission pass belongs to another student or round.",
            Reason::PassExhausted => "This admission pass has been used for too many requests.",
            Reason::PassRevoked => "You left the queue, so this admission pass no longer works. Please rejoin the queue.",
            Reason::RoundClosed => "Registration is not open right now.",
            Reason::NotEligible => "Your class year cannot register in this round.",
            Reason::UnknownStudent => "No such student.",
            Reason::UnknownSection => "No such section.",
            Reason::SectionClosed => "This section is closed.",
            Reason::AlreadyEnrolled => "You already hold a section of this course.",
            Reason::TimeConflict => "This section overlaps one you already hold.",
            Reason::PrerequisiteMissing => "You have not completed a prerequisite.",
            Reason::CreditLimit => "This would take you over your credit limit.",
            Reason::Full => "The section is full.",
            Reason::NotEnrolled => "You are not enrolled in this section.",
            Reason::AlreadyWaitlisted => "You are already on this section's waitlist.",
            Reason::NotWaitlisted => "You are not on this section's waitlist.",
            Reason::NotProcessed => {
                "Your request could not be processed because of a system problem. Nothing was changed; please send it again."
            }
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
            assert_eq!(Reason::from_code(r.code()), Some(r));
            assert!(
                r.code().len() <= 32,
                "code must fit command_outcomes.reason"
            );
            assert!(!r.message_ko().is_empty() && !r.message_en().is_empty());
        }
        assert_eq!(Reason::from_code("nope"), None);
    }
}
