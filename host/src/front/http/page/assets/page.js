// mailhost Email Maintenance: live refresh and a keyboard shortcut. The page works without
// this file; with it, the region marked data-live is fetched again every few seconds (only
// while the tab is visible, the "Live refresh" box is ticked and focus is not inside it) and
// replaced by the server's fresh rendering of the same address.
"use strict";
(function () {
  var toggle = document.getElementById("live-toggle");
  if (toggle && toggle.parentElement) {
    toggle.parentElement.hidden = false;
    try {
      toggle.checked = sessionStorage.getItem("mailhost-live") !== "off";
    } catch (e) { /* storage may be off */ }
    toggle.addEventListener("change", function () {
      try {
        sessionStorage.setItem("mailhost-live", toggle.checked ? "on" : "off");
      } catch (e) { /* storage may be off */ }
    });
  }

  function liveRegion() {
    return document.getElementById("live");
  }

  function refresh() {
    var live = liveRegion();
    if (!live || !live.hasAttribute("data-live")) return;
    var seconds = Math.max(1, parseInt(live.getAttribute("data-live"), 10) || 3);
    var wanted = !document.hidden &&
      (!toggle || toggle.checked) &&
      !live.contains(document.activeElement);
    if (!wanted) {
      window.setTimeout(refresh, seconds * 1000);
      return;
    }
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "mailhost-page" },
      cache: "no-store"
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }).then(function (text) {
      var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
      var now = liveRegion();
      if (fresh && now && !now.contains(document.activeElement)) {
        now.replaceWith(document.importNode(fresh, true));
      }
    }).catch(function () { /* try again next time */ }).then(function () {
      window.setTimeout(refresh, seconds * 1000);
    });
  }

  var first = liveRegion();
  if (first && first.hasAttribute("data-live")) {
    var wait = Math.max(1, parseInt(first.getAttribute("data-live"), 10) || 3);
    window.setTimeout(refresh, wait * 1000);
  }

  // "/" jumps to the search box, as on many sites.
  document.addEventListener("keydown", function (event) {
    var search = document.getElementById("q");
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
      target.tagName === "SELECT" || target.isContentEditable);
    if (event.key === "/" && search && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  });
})();
