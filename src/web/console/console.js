// edudns console. No framework, no CDN: served by edudns itself.
// Every text that comes from the API is inserted with textContent, never as
// markup: domain names and comments in the review queue and the audit log
// are typed by students and may carry HTML.
"use strict";

const STRINGS = {
  vi: {
    title: "Quản lý bộ lọc DNS", signout: "Đăng xuất", signin_title: "Đăng nhập",
    signin_help: "Dán mã truy cập do quản trị viên cấp (lệnh edudns tokens create).",
    token: "Mã truy cập", signin: "Đăng nhập", tab_policy: "Chính sách", tab_lists: "Cho phép / chặn",
    tab_reviews: "Yêu cầu xem xét", tab_allowances: "Cho phép tạm thời", tab_tester: "Kiểm tra",
    tab_audit: "Nhật ký", policy_title: "Danh mục bị chặn theo khối lớp",
    policy_help: "Đánh dấu danh mục cần chặn cho từng khối, rồi bấm Lưu. Thay đổi có hiệu lực trong vòng 1 giây.",
    lists_title: "Danh sách riêng", office_deny: "Phòng GD chặn (mọi trường)",
    office_allow: "Phòng GD cho phép (mọi trường)", school_lists: "Danh sách của từng trường",
    add: "Thêm", remove: "Xoá", reviews_title: "Yêu cầu \"chặn nhầm\"",
    allowances_title: "Cho phép tạm thời (tiết học)", reason: "Lý do", allow: "Cho phép",
    tester_title: "Tên miền này có bị chặn không?", check: "Kiểm tra", audit_title: "Nhật ký thay đổi",
    footer: "Đường dây nóng bảo vệ trẻ em: 111 (tongdai111.vn)", band: "Khối", save: "Lưu",
    saved: "Đã lưu — đang áp dụng.", conflict: "Người khác vừa thay đổi cấu hình. Đã tải lại; hãy làm lại thay đổi.",
    failed: "Không thực hiện được", signed_in: "Đã đăng nhập", bad_token: "Mã truy cập không đúng.",
    accept: "Chấp nhận", reject: "Từ chối", none: "Không có mục nào.", domain: "Tên miền",
    school: "Trường", category: "Danh mục", comment: "Ghi chú", day: "Ngày", until: "Đến",
    who: "Người thực hiện", when: "Thời điểm", action: "Hành động", subject: "Đối tượng",
    before: "Trước", after: "Sau", blocked: "BỊ CHẶN", allowed: "ĐƯỢC PHÉP", safe_search: "TÌM KIẾM AN TOÀN",
    end: "Kết thúc", status: "Trạng thái", school_deny: "Trường chặn", school_allow: "Trường cho phép",
    tab_sources: "Danh sách", sources_title: "Danh sách của từng danh mục",
    sources_help: "Danh sách tải về được cập nhật tự động. Dòng nào chặn một tên được bảo vệ (trang học tập, dịch vụ hệ thống) thì bị bỏ qua.",
    list: "Danh sách", entries: "Số tên miền", bytes: "Dung lượng", last_download: "Tải lần cuối", last_error: "Lỗi gần nhất",
    protected: "Bỏ qua (tên được bảo vệ)", state_local: "tệp cục bộ", state_pending: "chờ tải", state_downloading: "đang tải",
    state_ready: "đã tải", state_stale: "bản cũ", state_failed: "lỗi", since: "từ",
    sources_summary: "{ready}/{total} danh sách tải về đã sẵn sàng; đang tải: {running}; lỗi: {failed}",
    ignored_lines: "{n} dòng bị bỏ qua vì chặn tên được bảo vệ", ignored_line: "dòng {line}: {entry} (bảo vệ: {protected})",
    ignored_more: "… và {n} dòng nữa (chỉ giữ {kept} dòng đầu)",
    tab_overview: "Tổng quan", overview_title: "Tổng quan", from: "Từ ngày", to: "Đến ngày", show: "Xem",
    district_title: "Các trường gửi thống kê", by_category_title: "Truy vấn bị chặn mỗi ngày, theo danh mục",
    by_band_title: "Truy vấn bị chặn mỗi ngày, theo khối lớp", top_title: "Tên miền bị chặn nhiều nhất",
    last_report: "Báo cáo gần nhất", nodes: "Máy chủ", list_versions: "Phiên bản danh sách",
    reporting: "Đang báo cáo", stopped: "Ngừng báo cáo", never: "Chưa gửi lần nào", received: "nhận lúc",
    filter: "Bộ lọc", filter_up: "Bộ lọc hoạt động", no_heartbeat: "Không có tín hiệu", heartbeat_at: "tín hiệu lúc",
    last_policy: "Lấy chính sách lần cuối", never_fetched: "Chưa lấy",
    k_note: "Ô < k bị ẩn (k = {k}): ô có từ 1 đến {k1} truy vấn không được vẽ, và một ô khác cùng ngày bị ẩn theo nó.",
    bar_title: "{date} — {label}: {count}", blocked_axis: "truy vấn bị chặn", no_data: "Chưa có số liệu trong khoảng này.",
  },
  en: {
    title: "DNS filter administration", signout: "Sign out", signin_title: "Sign in",
    signin_help: "Paste the access token your administrator gave you (edudns tokens create).",
    token: "Access token", signin: "Sign in", tab_policy: "Policy", tab_lists: "Allow / deny",
    tab_reviews: "Review requests", tab_allowances: "Temporary allowances", tab_tester: "Tester",
    tab_audit: "Audit log", policy_title: "Blocked categories per grade band",
    policy_help: "Tick the categories to block for each band, then press Save. Changes apply within a second.",
    lists_title: "Own lists", office_deny: "Office deny list (every school)",
    office_allow: "Office allow list (every school)", school_lists: "Each school's lists",
    add: "Add", remove: "Remove", reviews_title: "\"Blocked by mistake\" requests",
    allowances_title: "Temporary allowances (lessons)", reason: "Reason", allow: "Allow",
    tester_title: "Would this name be blocked?", check: "Check", audit_title: "Audit log",
    footer: "Child protection hotline: 111 (tongdai111.vn)", band: "Band", save: "Save",
    saved: "Saved — applying.", conflict: "Someone else changed the configuration. Reloaded; please make your change again.",
    failed: "Failed", signed_in: "Signed in", bad_token: "Wrong access token.",
    accept: "Accept", reject: "Reject", none: "Nothing here.", domain: "Domain",
    school: "School", category: "Category", comment: "Comment", day: "Day", until: "Until",
    who: "Who", when: "When", action: "Action", subject: "Subject",
    before: "Before", after: "After", blocked: "BLOCKED", allowed: "ALLOWED", safe_search: "SAFE SEARCH",
    end: "End", status: "Status", school_deny: "School deny list", school_allow: "School allow list",
    tab_sources: "Lists", sources_title: "Each category's lists",
    sources_help: "Downloaded lists update by themselves. A line that would block a protected name (school work, system services) is ignored.",
    list: "List", entries: "Entries", bytes: "Size", last_download: "Last download", last_error: "Last error",
    protected: "Ignored (protected names)", state_local: "local file", state_pending: "pending", state_downloading: "downloading",
    state_ready: "ready", state_stale: "previous copy", state_failed: "failed", since: "since",
    sources_summary: "{ready}/{total} downloaded lists ready; downloads running: {running}; failed: {failed}",
    ignored_lines: "{n} lines ignored for protected names", ignored_line: "line {line}: {entry} (protected: {protected})",
    ignored_more: "… and {n} more (the first {kept} are kept)",
    tab_overview: "Overview", overview_title: "Overview", from: "From", to: "To", show: "Show",
    district_title: "Schools sending statistics", by_category_title: "Blocked queries per day, by category",
    by_band_title: "Blocked queries per day, by grade band", top_title: "Most blocked domains",
    last_report: "Last report", nodes: "Nodes", list_versions: "List versions",
    reporting: "Reporting", stopped: "Stopped reporting", never: "Never sent", received: "received",
    filter: "Filter", filter_up: "Filter up", no_heartbeat: "No heartbeat", heartbeat_at: "heartbeat",
    last_policy: "Last policy fetch", never_fetched: "Never fetched",
    k_note: "Cells under k are hidden (k = {k}): a cell of 1 to {k1} queries is not drawn, nor one other cell of that day hidden with it.",
    bar_title: "{date} — {label}: {count}", blocked_axis: "blocked queries", no_data: "No figures in this period yet.",
  },
};

let lang = localStorage.getItem("edudns-lang") === "en" ? "en" : "vi";
const t = (key) => STRINGS[lang][key] || key;
// A string with {name} placeholders filled from `values`.
const tf = (key, values) => t(key).replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("edudns-token") || "", who: null, etag: "", bands: [], categories: [], schools: [] };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  $("lang").textContent = lang === "vi" ? "English" : "Tiếng Việt";
}

function say(message, kind) {
  const status = $("status");
  status.textContent = message;
  status.className = kind || "";
}

async function api(method, path, body, headers) {
  const init = { method, headers: Object.assign({ Authorization: "Bearer " + state.token }, headers || {}) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, init);
  const etag = response.headers.get("ETag");
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { status: response.status, ok: response.ok, data, etag };
}

function errorText(result) {
  const data = result.data || {};
  const issues = (data.issues || []).map((i) => i.key + ": " + i.message).join("; ");
  return t("failed") + " (" + result.status + "): " + (issues || data.error || "");
}

// ---- Sign in ----

async function signIn(token) {
  state.token = token;
  const result = await api("GET", "/whoami");
  if (!result.ok) {
    state.token = "";
    sessionStorage.removeItem("edudns-token");
    say(result.status === 401 ? t("bad_token") : errorText(result), "error");
    $("signin-panel").hidden = false;
    $("app").hidden = true;
    return;
  }
  sessionStorage.setItem("edudns-token", token);
  state.who = result.data;
  $("who").textContent = result.data.name + " (" + result.data.role + ")";
  $("signin-panel").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  say(t("signed_in"), "ok");
  await loadBasics();
  showTab("overview");
}

function signOut() {
  sessionStorage.removeItem("edudns-token");
  location.reload();
}

async function loadBasics() {
  const [bands, schools] = await Promise.all([api("GET", "/bands"), api("GET", "/schools")]);
  if (bands.ok) {
    state.bands = bands.data.bands;
    state.categories = bands.data.categories;
    state.etag = bands.etag || state.etag;
  }
  if (schools.ok) state.schools = schools.data.schools;
  for (const id of ["allow-school", "test-school"]) fill($(id), state.schools.map((s) => [s.id, s.name]));
  for (const id of ["allow-band", "test-band"]) fill($(id), state.bands.map((b) => [b.id, b.name]));
}

function fill(select, options) {
  select.replaceChildren(...options.map(([value, label]) => el("option", { value, text: label + " (" + value + ")" })));
}

// ---- Tabs ----

const loaders = { overview: loadOverview, policy: renderGrid, lists: loadLists, sources: loadSources, reviews: loadReviews, allowances: loadAllowances, tester: () => {}, audit: loadAudit };

function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) button.setAttribute("aria-selected", String(button.dataset.tab === name));
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== "tab-" + name;
  loaders[name]();
}

// ---- Overview: the district (office, auditor) or one's own school ----

async function loadOverview() {
  const school = state.who.role.startsWith("school:") ? state.who.role.slice("school:".length) : null;
  const params = new URLSearchParams();
  if (school) params.set("school", school);
  if ($("overview-from").value) params.set("from", $("overview-from").value);
  if ($("overview-to").value) params.set("to", $("overview-to").value);
  const query = params.toString() ? "?" + params : "";
  const result = await api("GET", (school ? "/dashboard" : "/district") + query);
  if (!result.ok) { say(errorText(result), "error"); return; }
  const data = result.data;
  $("overview-from").value = data.from;
  $("overview-to").value = data.to;
  $("district").hidden = !data.schools;
  if (data.schools) renderDistrict(data.schools);
  $("chart-category").replaceChildren(...stackedChart(data.blocked_by_day, "by_category", "chart-category-title"));
  $("chart-band").replaceChildren(...stackedChart(data.blocked_by_day, "by_band", "chart-band-title"));
  $("k-note").textContent = tf("k_note", { k: data.k_anonymity, k1: Math.max(1, data.k_anonymity - 1) });
  const top = data.top_blocked_domains.map((d) => el("li", {}, el("span", { text: d.domain }), el("span", { text: d.count.toLocaleString(lang) })));
  $("top-domains").replaceChildren(...(top.length ? top : [el("li", { text: t("none") })]));
}

// A time of the API (RFC 3339) as the reader's language writes it.
const when = (rfc3339) => time(Date.parse(rfc3339) / 1000);

function renderDistrict(schools) {
  const head = el("tr", {}, ...["school", "last_report", "nodes", "list_versions", "last_policy", "filter", "status"]
    .map((k) => el("th", { text: t(k) })));
  const rows = schools.map((s) => {
    const last = s.last_day
      ? s.last_day + (s.last_received_at ? " (" + t("received") + " " + when(s.last_received_at) + ")" : "")
      : t("never");
    const lists = el("ul", { class: "versions" }, ...s.list_versions.map((v) =>
      el("li", { text: v.list + " · " + v.entries.toLocaleString(lang) + " · " + v.sha256, title: v.category })));
    const policy = s.last_policy_fetch
      ? when(s.last_policy_fetch) + (s.policy_etag ? " · " + s.policy_etag : "")
      : t("never_fetched");
    // Up only when a heartbeat of the last 2 hours says so (the API decides).
    const filter = el("td", { class: "filter " + (s.filter_up ? "up" : "down") },
      el("span", { class: "badge " + (s.filter_up ? "state-ready" : "state-failed"), text: t(s.filter_up ? "filter_up" : "no_heartbeat") }));
    if (s.heartbeat_at) filter.append(el("div", { class: "note", text: t("heartbeat_at") + " " + when(s.heartbeat_at) }));
    const status = s.reporting
      ? el("span", { class: "badge state-ready", text: t("reporting") })
      : el("span", { class: "badge state-failed", text: t("stopped") });
    return el("tr", { "data-school": s.id, class: s.reporting ? "reporting" : "stopped" },
      el("td", { text: s.name + " (" + s.id + ")" }), el("td", { text: last }),
      el("td", { class: "num", text: String(s.nodes) }), el("td", {}, lists),
      el("td", { class: "policy", text: policy }), filter, el("td", {}, status));
  });
  $("district-schools").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children) node.append(c);
  return node;
}

// A stacked bar per day of `group` ("by_category" or "by_band"), as SVG
// with a <title> per bar (its numbers, for screen readers and hover);
// hidden (null) and zero cells draw nothing. Returns [svg, legend].
function stackedChart(days, group, titleId) {
  const keys = [];
  const labels = {};
  for (const day of days) for (const c of day[group]) if (!(c.key in labels)) { keys.push(c.key); labels[c.key] = c.label; }
  const shown = (day) => day[group].reduce((sum, c) => sum + (c.count || 0), 0);
  const max = Math.max(1, ...days.map(shown));
  const width = 720, height = 240, left = 48, right = 8, top = 12, bottom = 28;
  const plot = height - top - bottom;
  const slot = (width - left - right) / Math.max(1, days.length);
  const bar = Math.max(2, slot * 0.7);
  const root = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-labelledby": titleId, "data-group": group });
  root.append(
    svg("line", { class: "axis", x1: left, y1: top + plot, x2: width - right, y2: top + plot }),
    svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: top + plot }),
    svg("text", { x: left - 4, y: top + 4, "text-anchor": "end", text: max.toLocaleString(lang) }),
    svg("text", { x: left - 4, y: top + plot, "text-anchor": "end", text: "0" }));
  const every = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((day, i) => {
    const x = left + i * slot + (slot - bar) / 2;
    let y = top + plot;
    for (const key of keys) {
      const cell = day[group].find((c) => c.key === key);
      if (!cell || !cell.count) continue;
      const h = (cell.count / max) * plot;
      y -= h;
      root.append(svg("rect", { class: "bar series-" + (keys.indexOf(key) % 8), x: x.toFixed(2), y: y.toFixed(2), width: bar.toFixed(2), height: Math.max(h, 0.5).toFixed(2), "data-date": day.date, "data-key": key },
        svg("title", { text: tf("bar_title", { date: day.date, label: labels[key], count: cell.count.toLocaleString(lang) }) })));
    }
    // Every few days, counted back from the last, so labels never overlap.
    if ((days.length - 1 - i) % every === 0) {
      root.append(svg("text", { x: (x + bar / 2).toFixed(2), y: height - 8, "text-anchor": "middle", text: day.date.slice(5) }));
    }
  });
  const legend = el("ul", { class: "legend" }, ...keys.map((key, i) =>
    el("li", {}, el("span", { class: "swatch series-" + (i % 8) }), el("span", { text: labels[key] }))));
  if (!keys.length) legend.append(el("li", { text: t("no_data") }));
  return [root, legend];
}

// ---- Policy grid: bands × categories ----

function renderGrid() {
  const office = state.who && state.who.role === "office";
  const head = el("tr", {}, el("th", { text: t("band") }), ...state.categories.map((c) => el("th", { text: c.name, title: c.id })), el("th", {}));
  const rows = state.bands.map((band) => {
    const cells = state.categories.map((c) => {
      const box = el("input", { type: "checkbox", "data-band": band.id, "data-category": c.id, "aria-label": band.id + " " + c.id });
      box.checked = band.block.includes(c.id);
      box.disabled = !office;
      return el("td", { class: "cell" }, box);
    });
    const save = el("button", { type: "button", class: "primary", "data-save": band.id, text: t("save"), onclick: () => saveBand(band.id) });
    save.disabled = !office;
    return el("tr", {}, el("th", { text: band.name, title: band.id }), ...cells, el("td", {}, save));
  });
  $("grid").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

async function saveBand(id) {
  const block = [...document.querySelectorAll('#grid input[data-band="' + CSS.escape(id) + '"]')]
    .filter((box) => box.checked).map((box) => box.dataset.category);
  const result = await api("PATCH", "/bands/" + encodeURIComponent(id), { block }, { "If-Match": state.etag });
  if (result.status === 412) {
    await loadBasics();
    renderGrid();
    say(t("conflict"), "error");
    return;
  }
  if (!result.ok) { say(errorText(result), "error"); return; }
  state.etag = result.etag || state.etag;
  const band = state.bands.find((b) => b.id === id);
  if (band && result.data.value) Object.assign(band, result.data.value);
  say(t("saved") + " " + id + ": " + block.join(", "), "ok");
}

// ---- Allow / deny lists ----

async function loadLists() {
  const office = await api("GET", "/office");
  if (office.ok) {
    state.etag = office.etag || state.etag;
    renderDomains($("office-deny"), office.data.deny, (d) => api("DELETE", "/office/deny/" + encodeURIComponent(d)));
    renderDomains($("office-allow"), office.data.allow, (d) => api("DELETE", "/office/allow/" + encodeURIComponent(d)));
  }
  const blocks = [];
  for (const school of state.schools) {
    const lists = el("div", { class: "columns" });
    for (const kind of ["deny", "allow"]) {
      const ul = el("ul", { class: "domains" });
      renderDomains(ul, school[kind], (d) => saveSchool(school.id, kind, school[kind].filter((x) => x !== d)));
      const input = el("input", { placeholder: "example.com", "aria-label": "domain" });
      const form = el("form", { class: "add", onsubmit: (e) => { e.preventDefault(); saveSchool(school.id, kind, school[kind].concat([input.value.trim()])); } },
        input, el("button", { type: "submit", text: t("add") }));
      lists.append(el("div", {}, el("h4", { text: t("school_" + kind) }), ul, form));
    }
    blocks.push(el("div", { class: "panel" }, el("h4", { text: school.name + " (" + school.id + ")" }), lists));
  }
  $("school-lists").replaceChildren(...blocks);
}

function renderDomains(list, domains, remove) {
  if (!domains.length) { list.replaceChildren(el("li", { text: t("none") })); return; }
  list.replaceChildren(...domains.map((d) => el("li", {}, el("span", { text: d }),
    el("button", { type: "button", text: t("remove"), onclick: async () => { report(await remove(d)); loadLists(); } }))));
}

async function saveSchool(id, kind, values) {
  const fresh = await api("GET", "/schools/" + encodeURIComponent(id));
  const result = await api("PATCH", "/schools/" + encodeURIComponent(id), { [kind]: values }, { "If-Match": fresh.etag || "*" });
  report(result);
  await loadBasics();
  loadLists();
}

function report(result) {
  if (result.ok) { say(t("saved"), "ok"); state.etag = result.etag || state.etag; }
  else say(errorText(result), "error");
}

// ---- Lists of each category: download state ----

// While a list is pending or downloading the view refreshes itself.
const SOURCES_REFRESH_MS = 3000;
let sourcesTimer = 0;

async function loadSources() {
  clearTimeout(sourcesTimer);
  const result = await api("GET", "/categories");
  if (!result.ok) { say(errorText(result), "error"); return; }
  const lists = result.data.categories.flatMap((c) => c.lists);
  const subscribed = lists.filter((l) => l.state !== "local");
  const count = (state) => subscribed.filter((l) => l.state === state).length;
  $("sources-summary").textContent = tf("sources_summary",
    { ready: count("ready"), total: subscribed.length, running: count("downloading"), failed: count("failed") });
  // A refresh keeps open the ignored-line lists the reader opened.
  const open = new Set([...document.querySelectorAll("#sources tr[data-list]")]
    .filter((row) => row.querySelector("details[open]")).map((row) => row.closest("[data-category]").dataset.category + "/" + row.dataset.list));
  $("sources").replaceChildren(...result.data.categories.map((c) => renderCategoryLists(c, open)));
  if (lists.some((l) => l.state === "pending" || l.state === "downloading")) {
    sourcesTimer = setTimeout(() => { if (!$("tab-sources").hidden) loadSources(); }, SOURCES_REFRESH_MS);
  }
}

function renderCategoryLists(category, open) {
  const head = el("tr", {}, ...["list", "status", "entries", "bytes", "last_download", "last_error", "protected"].map((k) => el("th", { text: t(k) })));
  const rows = category.lists.map((l) => {
    const entries = l.entries ?? l.downloaded_entries;
    let state = t("state_" + l.state);
    if (state === "state_" + l.state) state = l.state_label;
    if (l.state === "downloading" && l.downloading_since) state += " (" + t("since") + " " + time(l.downloading_since, true) + ")";
    return el("tr", { "data-list": l.name, "data-state": l.state },
      el("td", { text: l.name, title: l.source || l.list }),
      el("td", {}, el("span", { class: "badge state-" + l.state, text: state })),
      el("td", { class: "num", text: entries == null ? "-" : entries.toLocaleString(lang) }),
      el("td", { class: "num", text: size(l.bytes), title: l.bytes == null ? "" : l.bytes + " B" }),
      el("td", { text: l.last_download ? time(l.last_download) : "-" }),
      el("td", { class: "error", text: l.last_error || "" }),
      el("td", { class: "protected" }, ignored(l, open.has(category.id + "/" + l.name))));
  });
  return el("div", { "data-category": category.id },
    el("h3", { text: category.name + " (" + category.id + ")" }),
    el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))));
}

// "N lines ignored for protected names", opening onto the kept samples.
function ignored(list, open) {
  if (!list.protected_ignored) return "0";
  const samples = list.protected_samples.map((s) => el("li", { text: tf("ignored_line", s) }));
  const more = list.protected_ignored - list.protected_samples.length;
  if (more > 0) samples.push(el("li", { text: tf("ignored_more", { n: more, kept: list.protected_samples.length }) }));
  const details = el("details", {}, el("summary", { text: tf("ignored_lines", { n: list.protected_ignored }) }), el("ul", {}, ...samples));
  details.open = open;
  return details;
}

function time(seconds, short) {
  const date = new Date(seconds * 1000);
  return short ? date.toLocaleTimeString(lang) : date.toLocaleString(lang);
}

function size(bytes) {
  if (bytes == null) return "-";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
}

// ---- Reviews ----

async function loadReviews() {
  const result = await api("GET", "/reviews?status=pending");
  if (!result.ok) { say(errorText(result), "error"); return; }
  const head = el("tr", {}, ...["day", "school", "domain", "category", "comment", ""].map((k) => el("th", { text: k ? t(k) : "" })));
  const rows = result.data.reviews.map((r) => el("tr", {},
    el("td", { text: r.day }), el("td", { text: r.school + " / " + r.band }), el("td", { text: r.domain }),
    el("td", { text: r.category }), el("td", { text: r.comment }),
    el("td", {},
      el("button", { type: "button", class: "primary", text: t("accept"), onclick: () => decide(r.id, "accept") }),
      el("button", { type: "button", text: t("reject"), onclick: () => decide(r.id, "reject") }))));
  $("reviews").replaceChildren(el("thead", {}, head), el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { text: t("none") }))])));
}

async function decide(id, decision) {
  report(await api("POST", "/reviews/" + id + "/" + decision));
  loadReviews();
}

// ---- Temporary allowances ----

async function loadAllowances() {
  const result = await api("GET", "/allowances");
  if (!result.ok) { say(errorText(result), "error"); return; }
  const head = el("tr", {}, ...["school", "band", "domain", "until", "reason", "who", ""].map((k) => el("th", { text: k ? t(k) : "" })));
  const rows = result.data.allowances.map((a) => el("tr", {},
    el("td", { text: a.school }), el("td", { text: a.band }), el("td", { text: a.domain }),
    el("td", { text: new Date(a.until * 1000).toLocaleTimeString(lang) }), el("td", { text: a.reason }), el("td", { text: a.actor }),
    el("td", {}, el("button", { type: "button", text: t("end"), onclick: async () => { report(await api("DELETE", "/allowances/" + a.id)); loadAllowances(); } }))));
  $("allowances").replaceChildren(el("thead", {}, head), el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { text: t("none") }))])));
}

async function addAllowance(event) {
  event.preventDefault();
  const result = await api("POST", "/allowances", {
    school: $("allow-school").value, band: $("allow-band").value, domain: $("allow-domain").value.trim(),
    minutes: Number($("allow-minutes").value), reason: $("allow-reason").value,
  });
  report(result);
  loadAllowances();
}

// ---- Tester ----

async function runTest(event) {
  event.preventDefault();
  const result = await api("POST", "/test", { name: $("test-name").value.trim(), school: $("test-school").value, band: $("test-band").value });
  if (!result.ok) { say(errorText(result), "error"); return; }
  const verdict = $("test-verdict");
  verdict.textContent = t(result.data.verdict) + (result.data.category ? " — " + result.data.category : "");
  verdict.className = "verdict " + result.data.verdict;
  $("test-explanation").textContent = result.data.explanation;
}

// ---- Audit log ----

async function loadAudit() {
  const result = await api("GET", "/audit?limit=200");
  if (!result.ok) { $("audit").replaceChildren(el("tr", {}, el("td", { text: errorText(result) }))); return; }
  const head = el("tr", {}, ...["when", "who", "action", "subject", "before", "after"].map((k) => el("th", { text: t(k) })));
  const rows = result.data.entries.map((e) => el("tr", {},
    el("td", { text: new Date(e.at * 1000).toLocaleString(lang) }), el("td", { text: e.actor + (e.role ? " (" + e.role + ")" : "") }),
    el("td", { text: e.action }), el("td", { text: e.subject + (e.detail ? " " + e.detail : "") }),
    el("td", { text: e.before }), el("td", { text: e.after })));
  $("audit").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

// ---- Start ----

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage();
  $("lang").addEventListener("click", () => {
    lang = lang === "vi" ? "en" : "vi";
    localStorage.setItem("edudns-lang", lang);
    applyLanguage();
    if (state.who) showTab(document.querySelector("nav button[aria-selected=true]").dataset.tab);
  });
  $("signout").addEventListener("click", signOut);
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
  for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => showTab(button.dataset.tab));
  for (const form of document.querySelectorAll("form.add[data-list]")) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const input = form.querySelector("input");
      report(await api("POST", "/office/" + form.dataset.list, { domain: input.value.trim() }));
      input.value = "";
      loadLists();
    });
  }
  $("allowance-form").addEventListener("submit", addAllowance);
  $("tester-form").addEventListener("submit", runTest);
  $("overview-form").addEventListener("submit", (e) => { e.preventDefault(); loadOverview(); });
  if (state.token) signIn(state.token);
});
