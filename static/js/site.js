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
    followModelSize();
    var generate = document.getElementById("generate-form");
    if (generate) {
      generate.addEventListener("submit", function () {
        var button = document.getElementById("generate-button");
        if (button) { button.disabled = true; button.textContent = "Submitting…"; }
      });
    }
  });

  // Picking a model sets width/height to the size it was trained at, unless the user typed a size.
  function followModelSize() {
    var sizes = document.getElementById("model-sizes");
    var model = document.getElementById("id_model");
    if (!sizes || !model) { return; }
    sizes = JSON.parse(sizes.textContent);
    var typed = false;
    ["id_width", "id_height"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input) { input.addEventListener("input", function () { typed = true; }); }
    });
    model.addEventListener("change", function () {
      var size = sizes[model.value];
      if (typed || !size) { return; }
      document.getElementById("id_width").value = size;
      document.getElementById("id_height").value = size;
    });
  }
})();
