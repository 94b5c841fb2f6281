//! The student pages' own texts: sign-in failures, course search filter
//! messages, and the cart's notices and warnings. Texts about requests and
//! their outcomes, shared with the registrar's pages, are in
//! [`super::outcomes`].

use super::Lang;

/// A refused sign-in: staff sign in with a username, students with their
/// student number.
pub fn sign_in_failed(staff: bool, lang: Lang) -> &'static str {
    if staff {
        lang.t(
            "아이디 또는 비밀번호가 올바르지 않습니다.",
            "The username or password is wrong.",
        )
    } else {
        lang.t(
            "학번 또는 비밀번호가 올바르지 않습니다.",
            "The student number or password is wrong.",
        )
    }
}

/// What is wrong with one course search field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterProblem {
    TextTooLong,
    Department,
    Weekday,
    Time,
    EndBeforeStart,
    Credits,
    Page,
}

impl FilterProblem {
    /// The message shown next to the field.
    pub fn words(self, lang: Lang) -> &'static str {
        match self {
            FilterProblem::TextTooLong => lang.t(
                "검색어는 100자 이하로 입력하세요.",
                "Use at most 100 characters.",
            ),
            FilterProblem::Department => {
                lang.t("학과 코드가 올바르지 않습니다.", "Not a department code.")
            }
            FilterProblem::Weekday => {
                lang.t("요일을 목록에서 고르세요.", "Pick a weekday from the list.")
            }
            FilterProblem::Time => {
                lang.t("시각은 09:00처럼 입력하세요.", "Enter a time like 09:00.")
            }
            FilterProblem::EndBeforeStart => lang.t(
                "끝 시각은 시작 시각보다 늦어야 합니다.",
                "The end must be after the start.",
            ),
            FilterProblem::Credits => lang.t(
                "학점은 0에서 12 사이의 숫자입니다.",
                "Credits are a number from 0 to 12.",
            ),
            FilterProblem::Page => {
                lang.t("쪽 번호가 올바르지 않습니다.", "Not a valid page number.")
            }
        }
    }
}

/// The notice the cart page shows after a form sent the student back to it
/// (`?msg=`); nothing for a code it does not know.
pub fn cart_notice(code: &str, lang: Lang) -> &'static str {
    match code {
        "added" => lang.t("장바구니에 담았습니다.", "Added to your cart."),
        "removed" => lang.t("장바구니에서 뺐습니다.", "Removed from your cart."),
        "full" => lang.t(
            "장바구니에는 최대 12개 분반까지 담을 수 있습니다.",
            "A cart holds at most 12 sections.",
        ),
        "unknown" => lang.t("존재하지 않는 분반입니다.", "No such section."),
        "waitlist_on" => lang.t(
            "정원이 차 있으면 대기 명단에 올립니다.",
            "If it is full, you will join its waitlist.",
        ),
        "waitlist_off" => lang.t(
            "정원이 차 있어도 대기 명단에 올리지 않습니다.",
            "If it is full, you will not join its waitlist.",
        ),
        "not_in_cart" => lang.t(
            "장바구니에 없는 분반입니다.",
            "That section is not in your cart.",
        ),
        "empty" => lang.t(
            "신청할 분반이 장바구니에 없습니다.",
            "There is nothing in your cart to enroll in.",
        ),
        "alternates" => lang.t(
            "대체 분반을 저장했습니다. 1지망이 안 되면 순서대로 시도합니다.",
            "Alternates saved. If your first choice fails, they are tried in order.",
        ),
        "alt_other_course" => lang.t(
            "대체 분반은 같은 과목의 다른 분반이어야 합니다.",
            "An alternate must be another section of the same course.",
        ),
        "alt_repeated" => lang.t(
            "같은 분반을 두 번 고를 수 없습니다.",
            "A section can be named only once.",
        ),
        "alt_not_in_cart" => lang.t(
            "장바구니에 없는 분반입니다.",
            "That section is not in your cart.",
        ),
        _ => "",
    }
}

/// The start of a warning that another cart item is a section of the same
/// course (the other section's name follows).
pub fn same_course_in_cart(lang: Lang) -> &'static str {
    lang.t(
        "장바구니에 같은 과목의 다른 분반이 있습니다:",
        "Another section of this course is in the cart:",
    )
}

/// The start of a warning that another cart item meets at the same time
/// (its name follows).
pub fn overlaps_in_cart(lang: Lang) -> &'static str {
    lang.t(
        "장바구니의 다른 과목과 시간이 겹칩니다:",
        "Overlaps another cart section:",
    )
}
