// Runs before first paint: the remembered theme override and projector mode,
// so the page never flashes the wrong colours.
(function () {
  "use strict";
  var root = document.documentElement;
  try {
    var theme = window.localStorage.getItem("healthmon.theme");
    if (theme === "light" || theme === "dark") root.setAttribute("data-theme", theme);
  } catch (e) { /* storage blocked: follow the system */ }
  if (new URLSearchParams(window.location.search).has("projector")) root.classList.add("projector");
})();
