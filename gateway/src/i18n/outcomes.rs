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
        "left_waitlist" => lang.t("대기 취소", "Left the waitlist"),
        "rejected" => lang.t("실패", "Not enrolled"),
        "failed" => lang.t("처리 실패", "Not processed"),
        _ => lang.t("처리 중", "Queued"),
    }
}

/// A command's action (`enroll`, `drop`, `swap`, `leave_waitlist`) in words.
pub fn action_words(action: &str, lang: Lang) -> &'static str {
    match action {
        "drop" => lang.t("취소", "Drop"),
        "swap" => lang.t("분반 변경", "Change section"),
        "leave_waitlist" => lang.t("대기 취소", "Leave the waitlist"),
        _ => lang.t("신청", "Enroll"),
    }
}

/// A waitlist entry's state in words.
pub fn waitlist_state_words(state: &str, lang: Lang) -> &'static str {
    match state {
        "waiting" => lang.t("대기 중", "Waiting"),
        "promoted" => lang.t("신청됨", "Promoted"),
        "skipped" => lang.t("건너뜀", "Passed over"),
        "left" => lang.t("대기 취소", "Left"),
        _ => lang.t("알 수 없음", "Unknown"),
    }
}

/// A promotion in a sentence: "promoted from the waitlist into MAT1010-01".
pub fn promoted_into(section: &str, lang: Lang) -> String {
    match lang {
        Lang::Ko => format!("대기 명단에서 {section} 분반으로 신청되었습니다."),
        Lang::En => format!("Promoted from the waitlist into {section}."),
    }
}

/// A place in line: "3rd of 17" / "17명 중 3번째".
pub fn place_in_line(position: i64, waiting: i64, lang: Lang) -> String {
    match lang {
        Lang::Ko => format!("{waiting}명 중 {position}번째"),
        Lang::En => {
            let suffix = match (position % 10, position % 100) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{position}{suffix} of {waiting}")
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_in_line_read_naturally() {
        assert_eq!(place_in_line(3, 17, Lang::En), "3rd of 17");
        assert_eq!(place_in_line(1, 1, Lang::En), "1st of 1");
        assert_eq!(place_in_line(12, 40, Lang::En), "12th of 40");
        assert_eq!(place_in_line(22, 40, Lang::En), "22nd of 40");
        assert_eq!(place_in_line(3, 17, Lang::Ko), "17명 중 3번째");
        assert_eq!(
            promoted_into("MAT1010-01", Lang::En),
            "Promoted from the waitlist into MAT1010-01."
        );
    }
}
