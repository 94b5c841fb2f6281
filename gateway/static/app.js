// Sluice pages: small progressive enhancements. Every page works without
// this script; it only adds live updates and client-side hints. No inline
// script exists anywhere, so a strict Content-Security-Policy can be set.
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }
  function set(id, text) { var el = $(id); if (el) { el.textContent = text; } }
  function jitter(ms) { return ms * (0.8 + 0.4 * Math.random()); }

  // Forms that ask before doing something that cannot be undone.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); }
  });

  // --- Queue page: poll the status API at the interval the server asks. ---
  function queuePage() {
    var cfg = $("queue-poll");
    if (!cfg) { return; }
    var phase = cfg.dataset.phase;
    var units = { min: cfg.dataset.min, sec: cfg.dataset.sec, unknown: cfg.dataset.unknown };
    function span(s) { return s < 120 ? s + units.sec : Math.floor(s / 60) + units.min; }
    function next(ms) { setTimeout(poll, Math.max(500, ms)); }
    // A notice came, went or changed: its words, from the page, in place.
    // No reload: gateways may disagree for a while, and polls spread over
    // them would reload the page poll after poll.
    var shown = cfg.dataset.notice || "";
    function showNotice(name) {
      if (name === shown) { return; }
      var box = $("message");
      var words = null;
      cfg.querySelectorAll("[data-n]").forEach(function (el) {
        if (el.dataset.n === name) { words = el.textContent; }
      });
      if (!name) { box.hidden = true; box.textContent = ""; }
      else if (words !== null) { box.textContent = words; box.hidden = false; }
      else { return; }
      shown = name;
    }
    function poll() {
      fetch("/api/queue/status", { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) {
          if (r.status === 429 || r.status === 503) {
            next(jitter(parseInt(r.headers.get("Retry-After") || "5", 10) * 1000));
            return null;
          }
          return r.ok ? r.json() : Promise.reject(r.status);
        })
        .then(function (s) {
          if (!s) { return; }
          if (s.state !== phase) { location.reload(); return; }
          if (s.position !== null) { set("position", s.position); }
          if (s.ahead !== null) { set("ahead", s.ahead); }
          if (s.priority) { set("ahead-other", s.priority.ahead_in_other_classes); }
          set("estimate", s.estimate ? span(s.estimate.min_secs) + " – " + span(s.estimate.max_secs) : units.unknown);
          var rough = $("estimate-rough");
          if (rough) { rough.hidden = !(s.estimate && s.estimate.rough); }
          if (s.opens_in_secs !== null) { set("opens-in", span(s.opens_in_secs)); }
          var bar = $("progress");
          if (bar && s.progress !== null) { bar.value = Math.round(s.progress * 100); }
          showNotice(s.notice || "");
          if (s.poll_after_ms > 0) { next(s.poll_after_ms); }
        })
        .catch(function () { next(jitter(5000)); });
    }
    next(parseInt(cfg.dataset.pollMs, 10));
  }

  // --- Queue page: the cart's seats and the cart sent at admission. ---
  // Reloads (the server renders the warning or the outcome) when a section
  // in the cart fills or the sent cart's outcome is decided.
  function queueCart() {
    var box = $("queue-cart");
    if (!box) { return; }
    var command = box.dataset.command;
    if (command) {
      var look = function () {
        fetch("/api/commands/" + command, { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (o) {
            if (o && o.state === "decided") { location.reload(); return; }
            setTimeout(look, jitter((o && o.poll_after_ms) || 1500));
          })
          .catch(function () { setTimeout(look, jitter(3000)); });
      };
      setTimeout(look, 500);
      return;
    }
    var every = parseInt(box.dataset.pollMs || "0", 10);
    if (!every) { return; }
    var shown = box.dataset.filled || "";
    var seats = function () {
      fetch("/api/queue/cart", { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (c) {
          if (c && c.filled.join(" ") !== shown) { location.reload(); return; }
          setTimeout(seats, jitter((c && c.poll_after_ms) || every));
        })
        .catch(function () { setTimeout(seats, jitter(every * 2)); });
    };
    setTimeout(seats, jitter(every));
  }

  // --- Course search: warn before adding what would conflict. ---
  function parseSlots(text) {
    return (text || "").split(" ").filter(Boolean).map(function (t) {
      var p = t.split(":");
      return { day: +p[0], start: +p[1], end: +p[2] };
    });
  }
  function overlaps(a, b) {
    return a.some(function (m) {
      return b.some(function (n) { return m.day === n.day && m.start < n.end && n.start < m.end; });
    });
  }
  function coursesPage() {
    var sum = $("cart-summary");
    if (!sum) { return; }
    var held = parseSlots(sum.dataset.slots);
    var courses = (sum.dataset.courses || "").split(" ");
    var credits = +sum.dataset.credits, max = +sum.dataset.max;
    var rows = document.querySelectorAll("tr[data-slots]");
    Array.prototype.forEach.call(rows, function (row) {
      var warn = row.querySelector(".client-warn");
      if (!warn || row.querySelector(".tag.good")) { return; }
      var msgs = [];
      if (courses.indexOf(row.dataset.course) >= 0) { msgs.push(sum.dataset.msgDup); }
      else if (overlaps(parseSlots(row.dataset.slots), held)) { msgs.push(sum.dataset.msgOverlap); }
      if (credits + (+row.dataset.credits) > max) { msgs.push(sum.dataset.msgCredits); }
      if (msgs.length) { warn.textContent = "⚠ " + msgs.join(" · "); warn.hidden = false; }
    });
  }

  // --- Results: poll queued commands until each is decided. ---
  function resultsPage() {
    var box = $("pending");
    if (!box) { return; }
    var ids = box.dataset.ids.split(" ").filter(Boolean);
    var delay = 800;
    function poll() {
      Promise.all(ids.map(function (id) {
        return fetch("/api/commands/" + id, { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.ok ? r.json() : { state: "queued" }; })
          .catch(function () { return { state: "queued" }; });
      })).then(function (all) {
        if (all.every(function (o) { return o.state === "decided"; })) {
          location.replace("/results");
          return;
        }
        delay = Math.min(delay * 1.5, 5000);
        setTimeout(poll, jitter(delay));
      });
    }
    setTimeout(poll, delay);
  }

  // --- Registrar live view: numbers and small SVG line charts. ---
  var SVG = "http://www.w3.org/2000/svg";
  function chart(id, series) {
    var svg = $(id);
    if (!svg) { return; }
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var max = 1;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && v > max) { max = v; } }); });
    series.forEach(function (s) {
      var pts = [];
      s.values.forEach(function (v, i) {
        if (v === null) { return; }
        var x = s.values.length < 2 ? 0 : (i / (s.values.length - 1)) * 290 + 5;
        pts.push(x.toFixed(1) + "," + (95 - (v / max) * 85).toFixed(1));
      });
      var line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", pts.join(" "));
      line.setAttribute("class", s.cls);
      svg.appendChild(line);
    });
    var label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "4");
    label.setAttribute("y", "9");
    label.textContent = "max " + (Math.round(max * 10) / 10);
    svg.appendChild(label);
  }
  function list(id, items, none) {
    var ul = $(id);
    if (!ul) { return; }
    while (ul.firstChild) { ul.removeChild(ul.firstChild); }
    if (!items.length) { items = [none]; }
    items.forEach(function (text) { var li = document.createElement("li"); li.textContent = text; ul.appendChild(li); });
  }
  function roundPage() {
    var live = $("live");
    if (!live) { return; }
    var url = "/admin/rounds/" + live.dataset.round + "/live";
    var keep = 90, hist = { admitted: [], target: [], depth: [], commits: [] };
    function push(k, v) { hist[k].push(v); if (hist[k].length > keep) { hist[k].shift(); } }
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (s) {
          set("s-waiting", s.waiting);
          set("s-admitted", s.admitted_per_min === null ? "–" : Math.round(s.admitted_per_min));
          set("s-target", s.target_per_min);
          set("s-active", s.active);
          set("s-cap", s.max_active === 0 ? "∞" : s.max_active);
          set("s-depth", s.queue_depth === null ? "?" : s.queue_depth);
          set("s-lag", s.lag_secs === null ? "–" : s.lag_secs.toFixed(1) + " s");
          set("s-commits", s.commits_per_sec.toFixed(1));
          set("s-workers", s.workers);
          set("s-gateways", s.gateways);
          set("s-total", s.admitted_total);
          var d = live.dataset;
          set("s-pace", s.pace_mode === "auto" ? d.lAuto + " " + s.pace_floor + "–" + s.pace_ceiling : d.lFixed);
          if (s.pace_mode === "auto" && s.pace_reason) {
            var label = { backlog: d.lBacklog, latency: d.lLatency, healthy: d.lHealthy, steady: d.lSteady, unknown: d.lUnknown }[s.pace_reason] || s.pace_reason;
            var n = (s.pace_reason === "backlog" || s.pace_reason === "latency") && s.pace_signal !== null ? " " + s.pace_signal.toLocaleString() : "";
            set("s-pace-reason", label + n + (s.pace_changed_at ? " (" + d.lChanged + " " + s.pace_changed_at + ")" : ""));
          } else {
            set("s-pace-reason", "–");
          }
          set("s-capacity", s.pace_mode === "auto" && s.pace_capacity_per_min != null ? s.pace_capacity_per_min.toLocaleString() : "–");
          set("round-state", s.state);
          set("live-at", s.at);  // the university's clock, not the browser's
          push("admitted", s.admitted_per_min);
          push("target", s.target_per_min);
          push("depth", s.queue_depth);
          push("commits", s.commits_per_sec);
          chart("chart-admit", [{ values: hist.admitted, cls: "line" }, { values: hist.target, cls: "target" }]);
          chart("chart-depth", [{ values: hist.depth, cls: "line" }]);
          chart("chart-commits", [{ values: hist.commits, cls: "line" }]);
          list("s-rejections", s.rejections.map(function (r) { return r[0] + ": " + r[1]; }), live.dataset.lNone);
          list("s-hot", s.hot.map(function (h) { return h.label + " — " + h.seats_left + "/" + h.capacity + " (" + h.requests + ")"; }), live.dataset.lNone);
        })
        .catch(function () { /* keep the last numbers; try again */ })
        .then(function () { setTimeout(tick, 2000); });
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    queuePage();
    coursesPage();
    resultsPage();
    roundPage();
  });
})();
