//! Enroll and drop requests in words: their actions, outcomes and refusal
//! reasons, as the student's results page and the registrar's pages show
//! them.

use super::Lang;
use enrollment::Reason;

/// A refusal reason in the reader's language.
pub fn reason_text(reason: Reason, lang: Lang) -> &'static str {
    match lang {
        Lang::Ko => reason.message_ko(),
        Lang::En => reason.message_en(),
    }
}

/// A reason code in words; an unknown code is shown as it is.
pub fn reason_words(code: Option<&str>, lang: Lang) -> String {
    match code.and_then(Reason::from_code) {
        Some(r) => reason_text(r, lang).to_string(),
        None => code.unwrap_or("").to_string(),
    }
}

/// An outcome in words.
pub fn outcome_words(outcome: &str, lang: Lang) -> &'static str {
    match outcome {
        "enrolled" => lang.t("신청 완료", "Enrolled"),
        "dropped" => lang.t("취소 완료", "Dropped"),
        "waitlisted" => lang.t("대기 명단 등록", "Waitlisted"),
        "promoted" => lang.t("대기 후 신청 완료", "Enrolled from the waitlist"),
        "rejected" => lang.t("실패", "Not enrolled"),
        "failed" => lang.t("처리 실패", "Not processed"),
        _ => lang.t("처리 중", "Queued"),
    }
}

/// A command's action (`enroll`, `drop`) in words.
pub fn action_words(action: &str, lang: Lang) -> &'static str {
    if action == "drop" {
        lang.t("취소", "Drop")
    } else {
        lang.t("신청", "Enroll")
    }
}

/// "enrolled in alternate 03": the words for a seat taken in an alternate
/// section (`number`, when the section still exists).
pub fn alternate_words(number: Option<u16>, lang: Lang) -> String {
    match number {
        Some(n) => format!("{} {n:02}", lang.t("대체 분반", "alternate")),
        None => lang.t("대체 분반", "alternate").to_string(),
    }
}
