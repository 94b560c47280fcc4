/// The report page: a Mustache template (`{{x}}` escapes `& < > " '`; `{{{x}}}` is used only for our own
/// markup: style, script and the numeric SVG histograms), its style and its script.
enum ReportTemplate {
    static let page = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file: data:; \
        style-src 'unsafe-inline'; script-src 'sha256-{{scriptHash}}'; base-uri 'none'; form-action 'none'">
        <link rel="icon" href="data:,">
        <title>varaudit report · run {{run}}</title>
        <style>{{{style}}}</style>
        </head>
        <body>
        <header>
        <h1>{{#title}}{{title}}{{/title}}{{^title}}Audit report · run {{run}}{{/title}} \
        <span class="status s-{{status}}">{{status}}</span></h1>
        <p class="model">Model <code>{{model}}</code>{{#shard}} · shard {{shard}}{{/shard}} · varaudit {{toolVersion}} \
        · started {{started}} · finished {{finished}} · {{seconds}} of work</p>
        </header>
        <main>
        {{#hasChanged}}
        <section class="changed">
        <h2>Inputs that changed most</h2>
        <p>Largest increase in the mean memorization score from A to B.</p>
        <ol>{{#changed}}<li><a href="#input-{{index}}">{{name}}</a> <b>{{change}}</b></li>{{/changed}}</ol>
        </section>
        {{/hasChanged}}
        {{#compare}}
        <section class="compare">
        <h2>A (run {{run}}) against B (run {{runB}}: <code>{{modelB}}</code>)</h2>
        <p>{{paired}} variations paired by input, variation index and seed; {{unpaired}} unpaired. Differences are \
        B − A with 95% bootstrap intervals over inputs; p-values: McNemar's exact test for flags, a sign-flip \
        permutation test for scores.</p>
        <table class="metrics"><thead><tr><th>metric</th><th>A</th><th>B</th><th>B − A</th><th>95% CI</th>\
        <th>p</th></tr></thead><tbody>
        {{#metrics}}<tr class="{{#rise}}rise{{/rise}}"><td>{{name}}</td><td>{{a}}</td><td>{{b}}</td>\
        <td>{{difference}}</td><td>{{ci}}</td><td>{{p}}</td></tr>{{/metrics}}
        </tbody></table>
        <details><summary>B's weights (SHA-256)</summary><table class="kv"><tbody>{{#weightsB}}<tr><th>{{name}}</th>\
        <td><code>{{sha}}</code></td></tr>{{/weightsB}}</tbody></table></details>
        </section>
        {{/compare}}
        <section class="summary">
        <div class="stats">
        <div class="stat"><b>{{inputs}}</b><span>inputs</span></div>
        <div class="stat"><b>{{variations}}</b><span>of {{expected}} variations</span></div>
        <div class="stat{{#anyUnsafe}} warn{{/anyUnsafe}}"><b>{{unsafePct}}</b><span>unsafe ({{unsafe}})</span></div>
        <div class="stat{{#anyMemorized}} warn{{/anyMemorized}}"><b>{{memorizedPct}}</b><span>memorized ({{memorized}})</span></div>
        <div class="stat{{#anyReproduces}} warn{{/anyReproduces}}"><b>{{reproducesPct}}</b><span>reproduce their input ({{reproduces}})</span></div>
        <div class="stat"><b>{{unsafeInputs}} · {{memorizedInputs}}</b><span>inputs unsafe · inputs in the index</span></div>
        <div class="stat"><b>{{errorsCount}}</b><span>errors</span></div>
        </div>
        <h2>Detectors</h2>
        <ul class="detectors">
        {{#detectors}}<li class="{{#used}}used{{/used}}{{^used}}skipped{{/used}}"><b>{{name}}</b> \
        {{#used}}used{{/used}}{{^used}}skipped{{/used}}: {{detail}}</li>{{/detectors}}
        <li>Index recall@10 (as measured by <code>index build</code>): {{recall}}</li>
        </ul>
        {{#hasControls}}
        <h2>Positive controls</h2>
        <p>Copies planted on purpose, and the share each detector found.</p>
        <table class="controls"><thead><tr><th>detector</th><th>planted copies of</th><th>planted</th><th>found</th>\
        <th>share</th></tr></thead><tbody>
        {{#controls}}<tr class="{{#all}}ok{{/all}}{{^all}}miss{{/all}}"><td>{{detector}}</td><td>{{subject}}</td>\
        <td>{{planted}}</td><td>{{found}}</td><td>{{share}}</td></tr>
        {{#missed}}<tr class="missed"><td colspan="5">missed: {{what}}</td></tr>{{/missed}}{{/controls}}
        </tbody></table>
        {{/hasControls}}
        <div class="histograms">{{#histograms}}{{{.}}}{{/histograms}}</div>
        <details><summary>Every parameter</summary>
        <table class="kv"><tbody>{{#parameters}}<tr><th>{{name}}</th><td><code>{{value}}</code></td></tr>{{/parameters}}\
        </tbody></table></details>
        <details><summary>Weights (SHA-256)</summary>
        <table class="kv"><tbody>{{#weights}}<tr><th>{{name}}</th><td><code>{{sha}}</code><br><small>{{file}} \
        ({{bytes}} bytes)</small></td></tr>{{/weights}}</tbody></table></details>
        {{#hasErrors}}
        <h2>Errors</h2>
        <table class="errors"><thead><tr><th>input</th><th>stage</th><th>message</th></tr></thead><tbody>
        {{#errors}}<tr><td>{{input}}</td><td>{{stage}}</td><td>{{message}}</td></tr>{{/errors}}
        </tbody></table>
        {{/hasErrors}}
        </section>
        <nav class="filters" aria-label="Filters">
        <label><input type="checkbox" id="f-flagged"> flagged only</label>
        <label>flag <select id="f-flag"><option value="all">any or none</option><option value="memorized">memorized\
        </option><option value="reproduces-input">reproduces input</option><option value="unsafe">unsafe</option>\
        </select></label>
        <label>input <select id="f-input"><option value="all">all inputs</option>\
        {{#inputOptions}}<option value="{{index}}">{{name}}</option>{{/inputOptions}}</select></label>
        <label>sort <select id="f-sort"><option value="input">input order</option><option value="memorization">\
        memorization score</option><option value="safety">highest concept score</option><option value="similarity">\
        cosine to input</option></select></label>
        <span id="f-count" class="count"></span>
        </nav>
        <div id="inputs">
        {{#sections}}
        <section class="input" id="input-{{index}}" data-input="{{index}}">
        <div class="input-head">
        <a class="thumb{{#unsafe}} unsafe{{/unsafe}}" href="{{full}}">{{#thumb}}<img src="{{thumb}}" alt="input \
        {{name}}" loading="lazy">{{/thumb}}{{^thumb}}<span class="noimg">no preview</span>{{/thumb}}</a>
        <div>
        <h2>{{name}}</h2>
        <p class="path"><code>{{path}}</code> · {{size}} · sha256 {{sha}}…</p>
        {{#change}}<p>Memorization score, B − A: <b>{{change}}</b></p>{{/change}}
        <p>Input verdict: {{#flags}}<span class="flag f-{{flag}}">{{flag}}</span> {{/flags}}{{^flags}}\
        <span class="clean">no flag</span>{{/flags}} · memorization score {{memorization}}</p>
        {{#neighbor}}<p class="nb">Nearest training image: row {{row}}, cosine {{cosine}}{{#caption}} · “{{caption}}”\
        {{/caption}}{{#href}} · <a href="{{href}}" rel="noreferrer noopener">{{url}}</a>{{/href}}{{^href}}{{#url}} · \
        <code>{{url}}</code>{{/url}}{{/href}}{{#path}} · <code>{{path}}</code>{{/path}}</p>{{/neighbor}}
        {{#hasConcepts}}<details class="concepts"><summary>Input concept scores</summary><ul>{{#concepts}}\
        <li class="{{#flagged}}hit{{/flagged}}">{{name}} <b>{{score}}</b> <small>cos {{similarity}} − thr {{threshold}}\
        </small></li>{{/concepts}}{{#moreConcepts}}<li>{{name}} <b>{{score}}</b></li>{{/moreConcepts}}</ul>\
        </details>{{/hasConcepts}}
        </div>
        </div>
        {{#rows}}
        {{#label}}<h3 class="rowlabel">{{label}}</h3>{{/label}}
        <div class="grid">
        {{#cards}}
        <figure class="card{{#unsafe}} unsafe{{/unsafe}}" data-flags="{{flagList}}" data-input="{{input}}" \
        data-k="{{k}}" data-mem="{{memorizationSort}}" data-safety="{{safetySort}}" data-sim="{{similaritySort}}">
        <div class="pair">
        <a class="thumb" href="{{image}}" title="variation {{k}} (full image)">{{#thumb}}<img src="{{thumb}}" \
        alt="variation {{k}}" loading="lazy">{{/thumb}}{{^thumb}}<span class="noimg">missing</span>{{/thumb}}</a>
        {{#neighbor}}<div class="neighbor">{{#thumb}}<a href="{{full}}"><img src="{{thumb}}" alt="training row {{row}}" \
        loading="lazy"></a>{{/thumb}}{{^thumb}}<span class="noimg">row {{row}}</span>{{/thumb}}</div>{{/neighbor}}
        </div>
        <figcaption>
        <div class="line"><b>#{{k}}</b> {{#flags}}<span class="flag f-{{flag}}">{{flag}}</span> {{/flags}}</div>
        <div class="line">memorization <b>{{memorization}}</b> · to input <b>{{inputSimilarity}}</b></div>
        {{#neighbor}}<div class="line nb">nearest: row {{row}} · cos {{cosine}}{{#caption}}<br>“{{caption}}”{{/caption}}\
        {{#href}}<br><a href="{{href}}" rel="noreferrer noopener">{{url}}</a>{{/href}}{{^href}}{{#url}}<br><code>{{url}}\
        </code>{{/url}}{{/href}}{{#path}}<br><code>{{path}}</code>{{/path}}</div>{{/neighbor}}
        {{#hasConcepts}}<details class="concepts"><summary>concept scores</summary><ul>{{#concepts}}\
        <li class="{{#flagged}}hit{{/flagged}}">{{name}} <b>{{score}}</b> <small>cos {{similarity}} − thr {{threshold}}\
        </small></li>{{/concepts}}{{#moreConcepts}}<li>{{name}} <b>{{score}}</b></li>{{/moreConcepts}}</ul></details>\
        {{/hasConcepts}}
        </figcaption>
        </figure>
        {{/cards}}
        </div>
        {{/rows}}
        </section>
        {{/sections}}
        </div>
        </main>
        <footer>Generated {{generated}} by varaudit. Images flagged unsafe are blurred: click to reveal.</footer>
        <script>{{{script}}}</script>
        </body>
        </html>

        """

    static let style = """
        :root{--fg:#1d2330;--muted:#5b6577;--line:#d9dee7;--bg:#f7f8fa;--warn:#b3261e;--mem:#7a3db8;--rep:#a35c00}
        *{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
        header,main,footer{max-width:1280px;margin:0 auto;padding:0 20px}header h1{margin:18px 0 4px;font-size:22px}
        .model{color:var(--muted);margin:0 0 12px}code{font-size:12px;word-break:break-all}
        .status{font-size:13px;padding:2px 8px;border-radius:10px;background:#e3e7ee;vertical-align:middle}
        .s-done{background:#dff3e4}.s-failed{background:#fbe1df}
        .stats{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 16px}
        .stat{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:140px}
        .stat b{display:block;font-size:20px}.stat span{color:var(--muted);font-size:12px}.stat.warn b{color:var(--warn)}
        h2{font-size:17px;margin:18px 0 8px}ul.detectors{padding-left:18px}li.skipped{color:var(--muted)}
        table{border-collapse:collapse;background:#fff;margin:6px 0}td,th{border:1px solid var(--line);padding:4px 8px;
        text-align:left;vertical-align:top}table.kv th{font-weight:600;white-space:nowrap}tr.miss td{color:var(--warn)}
        tr.missed td{font-size:12px;color:var(--muted)}details{margin:8px 0}summary{cursor:pointer}
        .histograms{display:flex;flex-wrap:wrap;gap:16px}.hist{width:480px;max-width:100%;background:#fff;
        border:1px solid var(--line);border-radius:8px}.hist .bar{fill:#5b7bd5}.hist .axis{stroke:#888}
        .hist .thr{stroke:var(--warn);stroke-dasharray:4 3}.hist .ht,.hist .tick,.hist .thrl{font-size:10px;fill:#333}
        .hist .thrl{fill:var(--warn);text-anchor:end}
        .filters{position:sticky;top:0;z-index:2;display:flex;flex-wrap:wrap;gap:16px;align-items:center;
        background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 12px;margin:16px 0}
        .count{color:var(--muted);margin-left:auto}
        section.input{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 14px;margin:14px 0;
        content-visibility:auto;contain-intrinsic-size:auto 420px}
        .input-head{display:flex;gap:14px}.input-head h2{margin:0 0 4px}.path{color:var(--muted);margin:0}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px;margin-top:12px}
        .card{margin:0;border:1px solid var(--line);border-radius:8px;padding:8px;background:#fcfcfd}
        .pair{display:flex;gap:6px}.thumb,.neighbor{display:block;width:144px;height:144px;overflow:hidden;
        border-radius:6px;background:#e9ecf1}.neighbor{opacity:.95}.thumb img,.neighbor img{width:100%;height:100%;
        object-fit:cover;image-rendering:auto}.noimg{display:block;padding:8px;color:var(--muted);font-size:12px}
        .unsafe .thumb img,.thumb.unsafe img{filter:blur(16px)}.unsafe.revealed .thumb img,.thumb.unsafe.revealed img{filter:none}
        .unsafe .thumb,.thumb.unsafe{cursor:pointer;outline:2px solid var(--warn)}
        figcaption .line{margin-top:4px}.nb{color:var(--muted);font-size:12px;word-break:break-word}
        .flag{font-size:11px;padding:1px 6px;border-radius:8px;color:#fff;background:#666}.f-unsafe{background:var(--warn)}
        .f-memorized{background:var(--mem)}.f-reproduces-input{background:var(--rep)}.clean{color:#2e7d32}
        .concepts ul{margin:4px 0;padding-left:16px;font-size:12px}.concepts li.hit{color:var(--warn);font-weight:600}
        footer{color:var(--muted);font-size:12px;padding:20px}.rowlabel{font-size:13px;margin:12px 0 0;color:var(--muted)}
        tr.rise td{color:var(--warn);font-weight:600}section.changed,section.compare{background:#fff;
        border:1px solid var(--line);border-radius:10px;padding:4px 14px 10px;margin:14px 0}[hidden]{display:none!important}
        """

    /// Filters, sorting and click-to-reveal; no framework, nothing fetched.
    static let script = """
        (function () {
          "use strict";
          var $ = function (id) { return document.getElementById(id); };
          var sections = Array.prototype.slice.call(document.querySelectorAll("section.input"));
          var keys = {
            input: function (c) { return parseInt(c.dataset.k, 10); },
            memorization: function (c) { return -parseFloat(c.dataset.mem); },
            safety: function (c) { return -parseFloat(c.dataset.safety); },
            similarity: function (c) { return -parseFloat(c.dataset.sim); }
          };
          function apply() {
            var flaggedOnly = $("f-flagged").checked, flag = $("f-flag").value, input = $("f-input").value;
            var sort = $("f-sort").value, key = keys[sort] || keys.input, shown = 0, total = 0, order = [];
            sections.forEach(function (section) {
              var visible = 0, best = Infinity;
              Array.prototype.forEach.call(section.querySelectorAll(".grid"), function (grid) {
              var cards = Array.prototype.slice.call(grid.querySelectorAll(".card"));
              cards.forEach(function (card) {
                var flags = card.dataset.flags ? card.dataset.flags.split(" ") : [];
                var ok = (input === "all" || section.dataset.input === input) &&
                  (!flaggedOnly || flags.length > 0) && (flag === "all" || flags.indexOf(flag) >= 0);
                card.hidden = !ok;
                total += 1;
                if (ok) { visible += 1; best = Math.min(best, key(card)); }
              });
              cards.sort(function (a, b) { return key(a) - key(b) || keys.input(a) - keys.input(b); });
              cards.forEach(function (card) { grid.appendChild(card); });
              });
              section.hidden = visible === 0 && (flaggedOnly || flag !== "all" || input !== "all");
              shown += visible;
              order.push({ section: section, best: sort === "input" ? parseInt(section.dataset.input, 10) : best });
            });
            order.sort(function (a, b) { return a.best - b.best; });
            var parent = $("inputs");
            order.forEach(function (o) { parent.appendChild(o.section); });
            $("f-count").textContent = shown + " of " + total + " variations shown";
            document.body.dataset.visibleCards = String(shown);
          }
          ["f-flagged", "f-flag", "f-input", "f-sort"].forEach(function (id) {
            $(id).addEventListener("change", apply);
          });
          document.addEventListener("click", function (event) {
            var target = event.target.closest ? event.target.closest(".thumb") : null;
            if (!target) { return; }
            var holder = target.classList.contains("unsafe") ? target : target.closest(".card.unsafe");
            if (holder && !holder.classList.contains("revealed")) {
              event.preventDefault();
              holder.classList.add("revealed");
            }
          });
          apply();
          document.body.dataset.ready = "1";
        })();
        """
}
