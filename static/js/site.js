// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var seedButton = document.getElementById("seed-random");
    if (seedButton) {
      seedButton.addEventListener("click", function () {
        var input = document.getElementById(seedButton.dataset.target);
        if (input) { input.value = "-1"; input.focus(); }
      });
    }
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
      });
    });
    var generate = document.getElementById("generate-form");
    if (generate) {
      generate.addEventListener("submit", function () {
        var button = document.getElementById("generate-button");
        if (button) { button.disabled = true; button.textContent = "Submitting…"; }
      });
    }
  });
})();
