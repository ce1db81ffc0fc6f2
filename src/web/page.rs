//! The warning page: Vietnamese first, English below; no scripts, no
//! external resources, every text escaped; readable on a phone.

use crate::stats::report::html::escape;

/// Stylesheet served at `/__edudns/page.css` (CSP allows only 'self').
pub const CSS: &str = "*{box-sizing:border-box}body{margin:0;font-family:system-ui,'Segoe UI',Roboto,Arial,sans-serif;font-size:17px;line-height:1.5;color:#1b1b1b;background:#f4f6f8}
main{max-width:40rem;margin:0 auto;padding:1.25rem}header{font-weight:700;color:#24527a;margin-bottom:.5rem}
section{background:#fff;border-radius:.6rem;padding:1rem 1.25rem;margin:1rem 0;border:1px solid #d9dee3}
h1{font-size:1.45rem;margin:.2rem 0 .6rem;color:#8a1c1c}h2{font-size:1.1rem;margin:.2rem 0 .5rem}
.en{color:#4a4a4a}.en h1{color:#8a1c1c}dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem;margin:.5rem 0}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.help{border-left:.4rem solid #1f7a3a}.hotline{font-size:1.6rem;font-weight:800;color:#1f7a3a}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}textarea{width:100%;min-height:4.5rem;font:inherit;padding:.5rem;border:1px solid #8a96a3;border-radius:.4rem}
button{margin-top:.6rem;font:inherit;font-weight:700;color:#fff;background:#24527a;border:0;border-radius:.4rem;padding:.6rem 1.1rem;cursor:pointer}
button:focus,textarea:focus{outline:3px solid #f0b400;outline-offset:2px}footer{font-size:.85rem;color:#555;margin-top:1rem}";

/// A tiny SVG shield for the tab icon (served for /favicon.ico).
pub const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><path d=\"M8 1l6 2v4c0 4-3 7-6 8-3-1-6-4-6-8V3z\" fill=\"#24527a\"/></svg>";

/// Everything the blocked page shows.
pub struct Blocked<'a> {
    pub domain: &'a str,
    pub category_vi_en: &'a str,
    pub school: &'a str,
    pub band: &'a str,
    pub when: &'a str,
    /// "mon-sat 07:00-11:30" when the block is time-based.
    pub schedule: Option<&'a str>,
    pub reason: &'a str,
    /// CSRF token for the review form.
    pub token: &'a str,
}

/// Customisation from `[warning_page]`.
pub struct Branding<'a> {
    pub logo_text: Option<&'a str>,
    pub contact: Option<&'a str>,
    pub help_lines: &'a [String],
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><link rel=\"stylesheet\" href=\"/__edudns/page.css\"><link rel=\"icon\" href=\"/favicon.ico\" type=\"image/svg+xml\"></head><body><main>",
        escape(title)
    )
}

fn help(branding: &Branding<'_>) -> String {
    let mut out = String::from(
        "<section class=\"help\" aria-labelledby=\"help\"><h2 id=\"help\">Cần giúp đỡ? <span class=\"en\" lang=\"en\">/ Need help?</span></h2>\
         <p>Nếu em đang gặp chuyện buồn, bị bắt nạt hay thấy không an toàn, hãy gọi <strong>Tổng đài quốc gia bảo vệ trẻ em</strong> \
         (miễn phí, 24/7):</p><p class=\"hotline\">111</p><p>Hoặc xem <strong>tongdai111.vn</strong>.</p>\
         <p class=\"en\" lang=\"en\">If you are upset, bullied or feel unsafe, call the national child protection hotline <strong>111</strong> \
         (free, 24 hours a day), or visit tongdai111.vn.</p>",
    );
    for line in branding.help_lines {
        out.push_str(&format!("<p>{}</p>", escape(line)));
    }
    out.push_str("</section>");
    out
}

fn brand(branding: &Branding<'_>) -> String {
    format!(
        "<header>{}</header>",
        escape(
            branding
                .logo_text
                .unwrap_or("edudns — bộ lọc nội dung của trường / school content filter")
        )
    )
}

/// The page for a blocked site.
pub fn blocked_page(page: &Blocked<'_>, branding: &Branding<'_>) -> String {
    let schedule_vi = page
        .schedule
        .map(|s| {
            format!(
                "<dt>Thời gian chặn</dt><dd>{} (ngoài giờ này trang được mở)</dd>",
                escape(s)
            )
        })
        .unwrap_or_default();
    let schedule_en = page
        .schedule
        .map(|s| {
            format!(
                "<dt>Blocked during</dt><dd>{} (open outside these times)</dd>",
                escape(s)
            )
        })
        .unwrap_or_default();
    let contact = branding
        .contact
        .map(|c| format!("<p>Hoặc hỏi / Or ask: <strong>{}</strong></p>", escape(c)))
        .unwrap_or_default();
    let mut out = head("Trang bị chặn / Site blocked");
    out.push_str(&brand(branding));
    out.push_str(&format!(
        "<section aria-labelledby=\"vi\"><h1 id=\"vi\">Trang web này bị chặn theo quy định của nhà trường</h1>\
         <dl><dt>Trang web</dt><dd>{domain}</dd><dt>Lý do</dt><dd>{category}</dd>{schedule_vi}<dt>Trường</dt><dd>{school}</dd>\
         <dt>Khối lớp</dt><dd>{band}</dd><dt>Thời điểm</dt><dd>{when}</dd></dl>\
         <p>Nếu em cần trang này cho việc học, hãy báo thầy cô hoặc bấm nút bên dưới để nhà trường xem xét lại.</p></section>\
         <section class=\"en\" lang=\"en\" aria-labelledby=\"en\"><h1 id=\"en\">This website is blocked by your school's policy</h1>\
         <dl><dt>Website</dt><dd>{domain}</dd><dt>Reason</dt><dd>{category}</dd>{schedule_en}<dt>School</dt><dd>{school}</dd>\
         <dt>Grade band</dt><dd>{band}</dd><dt>Time</dt><dd>{when}</dd></dl>\
         <p>If you need this site for school work, tell your teacher or use the button below to ask the school to review it.</p></section>\
         <section aria-labelledby=\"mistake\"><h2 id=\"mistake\">Bị chặn nhầm? <span class=\"en\" lang=\"en\">/ Blocked by mistake?</span></h2>\
         <form method=\"post\" action=\"/__edudns/review\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label for=\"comment\">Ghi chú (không bắt buộc) <span class=\"en\" lang=\"en\">/ Comment (optional)</span></label>\
         <textarea id=\"comment\" name=\"comment\" maxlength=\"280\"></textarea>\
         <button type=\"submit\">Gửi yêu cầu xem xét / Ask for a review</button></form>\
         <p class=\"en\">Không gửi tên hay địa chỉ của em. / Your name and address are not sent.</p>{contact}</section>",
        domain = escape(page.domain),
        category = escape(page.category_vi_en),
        school = escape(page.school),
        band = escape(page.band),
        when = escape(page.when),
        token = escape(page.token),
    ));
    out.push_str(&help(branding));
    out.push_str(&format!(
        "<footer>{}</footer></main></body></html>",
        escape(page.reason)
    ));
    out
}

/// A short page with a message (review sent, not blocked, errors).
pub fn message_page(
    title_vi: &str,
    title_en: &str,
    text_vi: &str,
    text_en: &str,
    branding: &Branding<'_>,
) -> String {
    let mut out = head(&format!("{title_vi} / {title_en}"));
    out.push_str(&brand(branding));
    out.push_str(&format!(
        "<section><h1>{}</h1><p>{}</p></section><section class=\"en\" lang=\"en\"><h1>{}</h1><p>{}</p></section>",
        escape(title_vi),
        escape(text_vi),
        escape(title_en),
        escape(text_en)
    ));
    out.push_str(&help(branding));
    out.push_str("</main></body></html>");
    out
}
