/* The check editor: show only the fieldset of the chosen kind (the others are disabled so
   they are neither read nor announced). Without JavaScript every fieldset is shown and the
   server reads only the chosen kind's fields. */
(function () {
  "use strict";
  document.querySelectorAll("form[data-check-form]").forEach(function (form) {
    var select = form.querySelector("select[name$='kind']");
    if (!select) return;
    var sync = function () {
      form.querySelectorAll("fieldset[data-check-kind]").forEach(function (set) {
        var mine = set.dataset.checkKind === select.value;
        set.hidden = !mine;
        set.disabled = !mine;
      });
    };
    select.addEventListener("change", sync);
    sync();
  });
})();
