// fhir-assist coding review: keyboard navigation and the code picker.
// Plain JavaScript, no build step. Every action is a normal form post, so the pages
// also work without this file; it only adds shortcuts, focus handling and live search.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-row]")); }

  function firstOpenRow() {
    return rows().find(function (r) { return r.dataset.status === "provisional"; });
  }

  function currentRow() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("[data-row]") : null;
  }

  function focusRow(row) {
    if (!row) return;
    rows().forEach(function (r) { r.classList.remove("is-current"); });
    row.classList.add("is-current");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(currentRow());
    if (index < 0) index = all.findIndex(function (r) { return r.classList.contains("is-current"); });
    var next = index < 0 ? 0 : Math.min(all.length - 1, Math.max(0, index + step));
    focusRow(all[next]);
  }

  function submitOnce(form) {
    if (form.dataset.sent) return;
    form.dataset.sent = "1";
    form.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
    form.submit();
  }

  // ---------------------------------------------------------------- reject reason
  function openReject(row) {
    var form = row && row.querySelector(".reject-form");
    if (!form) return;
    form.classList.add("open");
    var input = form.querySelector("input[name=reason]");
    input.focus();
  }

  function closeReject(form) {
    form.classList.remove("open");
    focusRow(form.closest("[data-row]"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-reject-open]");
    if (button) {
      var form = button.closest(".reject-form");
      if (!form.classList.contains("open")) {
        event.preventDefault();
        openReject(button.closest("[data-row]"));
      }
      return;
    }
    var helpButton = event.target.closest("[data-action=help]");
    if (helpButton) { showHelp(); return; }
    var row = event.target.closest(".worklist [data-row]");
    if (row && !event.target.closest("a, button, input")) { window.location.href = row.dataset.href; }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.method.toLowerCase() !== "post") return;
    if (form.dataset.sent) { event.preventDefault(); return; }   // no double decisions
    form.dataset.sent = "1";
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target.matches && target.matches(".reject-form input[name=reason]")) {
      if (event.key === "Escape") { event.preventDefault(); closeReject(target.form); }
      else if (event.key === "Enter") { event.preventDefault(); submitOnce(target.form); }
      return;
    }
    if (target.id === "code-search") return;            // handled by the picker below
    if (event.ctrlKey || event.metaKey || event.altKey || typing(target)) return;
    var row = currentRow() || document.querySelector("[data-row].is-current");
    var key = event.key;
    if (key === "j" || key === "ArrowDown" && row) { event.preventDefault(); move(1); }
    else if (key === "k" || key === "ArrowUp" && row) { event.preventDefault(); move(-1); }
    else if (key === "Enter" && row && row.dataset.href && target === row) { event.preventDefault(); window.location.href = row.dataset.href; }
    else if (key === "a" && row) { clickIn(row, "[data-key=a]", event); }
    else if (key === "r" && row) { event.preventDefault(); openReject(row); }
    else if (key === "u" && row) { clickIn(row, "[data-key=u]", event); }
    else if (key === "/") {
      var search = document.getElementById("code-search");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    }
    else if (key === "n") {
      var next = document.getElementById("next-encounter");
      if (next) { event.preventDefault(); next.click(); }
    }
    else if (key === "w") { event.preventDefault(); window.location.href = document.querySelector(".brand").href; }
    else if (key === "?") { event.preventDefault(); showHelp(); }
  });

  function clickIn(row, selector, event) {
    var button = row.querySelector(selector);
    if (button) { event.preventDefault(); submitOnce(button.form); }
  }

  function showHelp() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.showModal && !dialog.open) dialog.showModal();
  }

  // ---------------------------------------------------------------- code picker
  function setupPicker() {
    var input = document.getElementById("code-search");
    var list = document.getElementById("code-results");
    if (!input || !list) return;
    var searchUrl = input.form.dataset.searchUrl;
    var timer = null;
    var selected = -1;
    var seq = 0;

    function options() { return Array.prototype.slice.call(list.querySelectorAll("[role=option]")); }

    function select(index) {
      var opts = options();
      selected = opts.length ? (index + opts.length) % opts.length : -1;
      opts.forEach(function (o, i) { o.setAttribute("aria-selected", i === selected ? "true" : "false"); });
      if (selected >= 0) {
        input.setAttribute("aria-activedescendant", opts[selected].id);
        opts[selected].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function render(results) {
      list.textContent = "";
      results.forEach(function (hit, i) {
        var li = document.createElement("li");
        li.setAttribute("role", "option");
        li.id = "opt-" + (i + 1);
        li.setAttribute("aria-selected", "false");
        li.dataset.code = hit.code;
        var button = document.createElement("button");
        button.type = "submit"; button.name = "code"; button.value = hit.code;
        button.className = "result-button"; button.tabIndex = -1;
        var chip = document.createElement("span"); chip.className = "code-chip"; chip.textContent = hit.code;
        var text = document.createElement("span"); text.textContent = " " + hit.description;
        button.appendChild(chip); button.appendChild(text);
        if (hit.path && hit.path.length) {
          var path = document.createElement("span"); path.className = "muted small path-inline";
          path.textContent = hit.path.join(" › ");
          button.appendChild(path);
        }
        li.appendChild(button);
        list.appendChild(li);
      });
      input.setAttribute("aria-expanded", results.length ? "true" : "false");
      select(results.length ? 0 : -1);
    }

    function search() {
      var query = input.value.trim();
      var mine = ++seq;
      if (query.length < 2) { render([]); return; }
      fetch(searchUrl + "?q=" + encodeURIComponent(query), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { results: [] }; })
        .then(function (data) { if (mine === seq) render(data.results || []); })
        .catch(function () { /* the Search button still works without live results */ });
    }

    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, 150); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") { event.preventDefault(); select(selected + 1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); select(selected - 1); }
      else if (event.key === "Escape") {
        event.preventDefault(); input.value = ""; render([]);
        focusRow(document.querySelector("[data-row].is-current") || firstOpenRow() || rows()[0]);
      }
      else if (event.key === "Enter") {
        var opts = options();
        if (opts.length && selected >= 0) {
          event.preventDefault();
          var button = opts[selected].querySelector("button");
          var form = button.form;
          if (form.dataset.sent) return;
          form.dataset.sent = "1";
          var field = document.createElement("input");
          field.type = "hidden"; field.name = "code"; field.value = button.value;
          form.appendChild(field);
          form.submit();
        }
        // no results yet: let the form search on the server
      }
    });
    if (options().length) select(0);
  }

  // ---------------------------------------------------------------- start
  function start() {
    document.querySelectorAll(".score-bar [data-width]").forEach(function (bar) {
      bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.width) || 0)) + "%";
    });
    setupPicker();
    var focus = new URLSearchParams(window.location.search).get("focus");
    var target = null;
    if (focus === "add-code") target = document.getElementById("code-search");
    else if (focus === "next-encounter") target = document.getElementById("next-encounter");
    else if (focus) target = document.getElementById("s-" + focus);
    if (target && target.matches("[data-row]")) { focusRow(target); return; }
    if (target) { target.focus(); return; }
    if (document.getElementById("code-search") && document.getElementById("code-search").value) {
      document.getElementById("code-search").focus(); return;
    }
    var first = firstOpenRow() || rows()[0];
    if (first) focusRow(first);
  }

  // a page restored from the back/forward cache must accept decisions again
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sent]").forEach(function (form) {
      delete form.dataset.sent;
      form.querySelectorAll("button").forEach(function (b) { b.removeAttribute("aria-disabled"); });
    });
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
