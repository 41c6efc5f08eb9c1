"""Generate MTLV's packaged demo dataset: SYNTHETIC chest X-ray reports.

The reports imitate the style of the Indiana University / Open-I chest X-ray collection
(a FINDINGS section and an IMPRESSION section, "XXXX" where the original anonymises text),
but every sentence is produced here from templates. They are NOT real patient data and are
meant for demos and tests only.

Eight labels from the Open-I label set are used, always in this order:

    Cardiomegaly, Effusion, opacity, Atelectasis, Calcified granuloma, Nodule, Emphysema,
    spine/degenerative

About a quarter of the reports are normal (no label). Each label has several paraphrased
positive templates (with laterality, severity and location), and the reports also carry
negated or look-alike distractor sentences ("No pleural effusion.", "Linear opacity at the
left base, likely atelectasis.", "Degenerative changes of both shoulders."), so a single
keyword per label is a poor classifier while the task stays learnable from n-grams.

The output is byte-for-byte reproducible: only a seeded `random.Random` is used (no numpy,
no set iteration, no hash-ordered containers).

Usage:
    python scripts/make_demo_data.py [--n 800] [--seed 20240611] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

from mtlv.data.sources.demo import DEMO_LABELS

# The label set is the loader's, so data and loader cannot drift apart.
LABELS = list(DEMO_LABELS)

DEFAULT_N = 800
DEFAULT_SEED = 20240611
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "mtlv" / "data" / "demo" / "demo_reports.jsonl"

MIN_WORDS, MAX_WORDS = 20, 80

# --------------------------------------------------------------------------------------
# Slot fillers. Lists (never sets) so that choices are reproducible.
# --------------------------------------------------------------------------------------
FILL: dict[str, list[str]] = {
    "side": ["right", "left"],
    "sev": ["mild", "mild", "moderate", "marked"],
    "size": ["small", "small", "trace", "moderate", "large"],
    "lobe": ["right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe",
             "lingula", "left lower lobe"],
    "zone": ["right apex", "left apex", "right midlung", "left midlung", "right base",
             "left base", "right perihilar region", "left perihilar region"],
    "base": ["right base", "left base", "lung bases", "right lung base", "left lung base"],
    "mm": ["4", "5", "6", "7", "8", "9", "10", "12", "14"],
    "cmm": ["3", "4", "5", "6", "8"],
    "spine": ["thoracic spine", "thoracic spine", "lower thoracic spine", "thoracolumbar junction"],
    "stable": ["", "", "stable ", "unchanged "],
    "dx": ["pneumonia", "infection", "aspiration", "early pneumonia"],
}
# A slot written "{Side}" is the capitalised "{side}"; "{sevly}" is the adverb of "{sev}".

# --------------------------------------------------------------------------------------
# Positive findings sentences, per label. The label word appears in only some of them.
# --------------------------------------------------------------------------------------
POSITIVE: dict[str, list[str]] = {
    "Cardiomegaly": [
        "The heart is {sevly} enlarged.",
        "{Sev} cardiomegaly.",
        "{stable}{sev} enlargement of the cardiac silhouette.",
        "Cardiac silhouette is {sevly} enlarged.",
        "Heart size is {sevly} increased.",
        "The cardiomediastinal silhouette is enlarged, {sev} in degree.",
        "{Sev} cardiomegaly, unchanged from prior.",
        "Enlarged heart with a prominent left ventricular contour.",
    ],
    "Effusion": [
        "{Size} {side} pleural effusion.",
        "{Size} bilateral pleural effusions.",
        "Blunting of the {side} costophrenic angle, compatible with a {size} effusion.",
        "Layering {side} pleural fluid.",
        "There is a {size} amount of fluid in the {side} pleural space.",
        "Meniscus of fluid at the {side} base.",
        "Blunted costophrenic angles bilaterally, consistent with {size} effusions.",
        "{stable}{size} {side} effusion.",
    ],
    "opacity": [
        "Patchy airspace opacity in the {lobe}.",
        "Focal airspace disease in the {lobe}.",
        "Hazy opacities in the {lobe}.",
        "Ill-defined infiltrate in the {lobe}, concerning for {dx}.",
        "There is consolidation of the {lobe}.",
        "Interstitial opacities in the {lobe}.",
        "Increased density in the {lobe}, which may represent {dx}.",
        "Airspace consolidation is present in the {lobe}.",
    ],
    "Atelectasis": [
        "Bibasilar subsegmental atelectasis.",
        "Linear {side} basilar atelectasis.",
        "Linear opacity at the {base}, likely atelectasis.",
        "Streaky densities at the {base} consistent with atelectasis or scarring.",
        "Platelike atelectasis in the {lobe}.",
        "Volume loss in the {lobe} with discoid atelectasis.",
        "Minimal dependent atelectasis at the {base}.",
        "Subsegmental collapse of the {lobe}.",
    ],
    "Calcified granuloma": [
        "{stable}calcified granuloma in the {zone}.",
        "Small calcified nodule in the {zone}.",
        "Calcified granulomas in the {lobe}.",
        "Densely calcified {cmm} mm focus in the {zone}, sequela of prior granulomatous disease.",
        "Punctate calcified granuloma projecting over the {zone}.",
        "Scattered calcified granulomas, unchanged.",
        "Calcified nodules in the {zone}, consistent with healed infection.",
        "Punctate calcification in the {zone}, likely old histoplasmosis.",
    ],
    "Nodule": [
        "{mm} mm nodule in the {lobe}.",
        "Noncalcified {mm} mm pulmonary nodule in the {zone}.",
        "Rounded nodular density projecting over the {zone}.",
        "Indeterminate {mm} mm nodule in the {lobe}; recommend CT.",
        "There is a {mm} mm soft tissue density in the {zone}, possibly a nodule.",
        "Ill-defined nodular opacity in the {zone}, recommend chest CT.",
        "New {mm} mm rounded density in the {lobe}.",
    ],
    "Emphysema": [
        "The lungs are hyperexpanded with flattened hemidiaphragms, consistent with emphysema.",
        "Hyperinflated lungs with flattening of the diaphragms.",
        "Emphysematous changes in the upper lobes.",
        "Lungs are hyperinflated with increased retrosternal airspace.",
        "Hyperlucent, hyperexpanded lungs compatible with COPD.",
        "Bullous changes at the lung apices.",
        "Changes of chronic obstructive pulmonary disease with hyperinflation.",
        "{Sev} emphysema.",
    ],
    "spine/degenerative": [
        "Degenerative changes of the {spine}.",
        "{Sev} spondylosis of the {spine}.",
        "Multilevel osteophytes in the {spine}.",
        "Degenerative disc disease of the {spine}.",
        "{Sev} degenerative endplate changes in the {spine}.",
        "Anterior osteophytes of the {spine}.",
        "Multilevel degenerative changes of the spine.",
    ],
}

# Equivocal sentences: wording on which readers disagree. They stand in for the finding in
# some positive reports and appear in some negative ones, as borderline calls do in real
# reports, so no model can be perfect.
EQUIVOCAL: dict[str, list[str]] = {
    "Cardiomegaly": ["Borderline heart size.", "Heart size is at the upper limits of normal."],
    "Effusion": ["Possible trace {side} pleural fluid.", "Minimal blunting of the {side} costophrenic angle."],
    "opacity": ["Subtle hazy density in the {lobe}.", "Questionable faint opacity in the {lobe}."],
    "Atelectasis": ["Minimal streaky density at the {base}.", "Slightly low lung volumes with crowding at the {base}."],
    "Calcified granuloma": ["Tiny dense focus in the {zone}.", "Punctate density in the {zone}."],
    "Nodule": ["Questionable nodular density in the {zone}, possibly a nipple shadow.",
               "Possible small density in the {zone}."],
    "Emphysema": ["Lungs are slightly hyperexpanded.", "Mildly increased lung volumes."],
    "spine/degenerative": ["Minimal spurring of the {spine}.", "Mild height loss of a lower thoracic vertebral body."],
}
EQUIVOCAL_RATE = 0.09  # chance a report uses/gets an equivocal sentence for a label

# Short impression phrases, filled from the same slot values as the findings sentence.
IMPRESSION: dict[str, list[str]] = {
    "Cardiomegaly": ["Cardiomegaly.", "Enlarged heart.", "{Sev} cardiomegaly.",
                     "Cardiac enlargement without edema."],
    "Effusion": ["{Size} pleural effusion.", "Pleural effusion.", "Effusion, as above."],
    "opacity": ["Airspace disease in the {lobe}, possibly {dx}.", "Findings concerning for {dx}.",
                "{Lobe} infiltrate."],
    "Atelectasis": ["Basilar atelectasis.", "Subsegmental atelectasis.", "Atelectasis, as above."],
    "Calcified granuloma": ["Old granulomatous disease.", "Calcified granuloma."],
    "Nodule": ["{mm} mm pulmonary nodule; CT is recommended.", "Indeterminate pulmonary nodule.",
               "Nodular density, recommend CT for further evaluation."],
    "Emphysema": ["Emphysema.", "COPD.", "Hyperinflation consistent with COPD."],
    "spine/degenerative": ["Degenerative changes of the spine."],
}

# --------------------------------------------------------------------------------------
# Normal / negated sentences, by anatomical slot. Several contain a label's own word.
# --------------------------------------------------------------------------------------
NORMAL_HEART = [
    "Heart size is normal.",
    "The heart is normal in size.",
    "The cardiomediastinal silhouette is within normal limits.",
    "Normal heart size and mediastinal contours.",
    "No cardiomegaly.",
    "Heart size and pulmonary vascularity are within normal limits.",
    "The cardiac silhouette is normal. No cardiomegaly.",
    "Stable cardiomediastinal silhouette.",
]
NORMAL_EXPANSION = [
    "The lungs are well expanded.",
    "Lungs are normally inflated.",
    "No hyperinflation.",
    "No evidence of emphysema.",
    "Normal lung volumes.",
]
NORMAL_LUNGS = [
    "The lungs are clear.",
    "No focal airspace opacity.",
    "No focal consolidation.",
    "No focal airspace disease.",
    "Lungs are clear without focal opacity.",
    "There is no focal airspace opacity to suggest pneumonia.",
    "No pneumothorax or focal consolidation.",
    "Clear lungs without atelectasis or consolidation.",
]
NORMAL_NODULE = [
    "No suspicious pulmonary nodules or masses.",
    "No discrete nodule.",
    "Nipple shadows are noted, no pulmonary nodule.",
    "No suspicious nodule.",
]
NORMAL_PLEURA = [
    "No pleural effusion or pneumothorax.",
    "No pleural effusion.",
    "There is no pneumothorax or pleural effusion.",
    "The costophrenic angles are sharp.",
    "No effusion or pneumothorax.",
    "No pleural effusions.",
]
NORMAL_BONES = [
    "The osseous structures are intact.",
    "No acute bony abnormality.",
    "Visualized osseous structures are unremarkable.",
    "Bony thorax is intact.",
    "No acute osseous findings.",
]
# Look-alike sentences that mention a label word (or a near-synonym) but are not that finding.
DISTRACTORS = [
    "Previously seen {side} effusion has resolved.",
    "Interval resolution of the {lobe} opacity.",
    "Degenerative changes of both shoulders.",
    "Degenerative changes of the {side} acromioclavicular joint.",
    "Calcified {side} hilar lymph nodes.",
    "Calcified aortic knob.",
    "Aortic atherosclerotic calcification.",
    "Surgical clips in the right upper quadrant.",
    "Median sternotomy wires are intact.",
    "Mild tortuosity of the thoracic aorta.",
    "Bilateral nipple shadows, not to be confused with nodules.",
    "Cardiomegaly on the prior study has resolved.",
    "Prior atelectasis at the {base} has cleared.",
    "The previously questioned granuloma is not seen.",
]
NORMAL_IMPRESSION = [
    "No acute cardiopulmonary abnormality.",
    "No acute cardiopulmonary disease.",
    "Normal chest x-XXXX.",
    "No active disease.",
    "No acute abnormality.",
    "Negative chest.",
    "No acute cardiopulmonary process.",
]
HEADERS = ["", "", "", "Comparison: XXXX. ", "Comparison: None. "]

_FORMATTER = string.Formatter()


def _slots(rng: random.Random) -> dict[str, str]:
    """One value per slot, drawn in a fixed order: shared by a label's findings and impression."""
    return {key: rng.choice(values) for key, values in FILL.items()}


def _fill(template: str, slots: dict[str, str]) -> str:
    out: list[str] = []
    for literal, field, _spec, _conv in _FORMATTER.parse(template):
        out.append(literal)
        if field is None:
            continue
        if field == "sevly":
            value = slots["sev"] + "ly"
        else:
            value = slots[field.lower()]
            if field[0].isupper():
                value = value[:1].upper() + value[1:]
        out.append(value)
    text = "".join(out)
    return text[:1].upper() + text[1:]


def _sample_labels(rng: random.Random) -> list[str]:
    """Draw a label set with realistic co-occurrence; about 25% of reports are normal."""
    if rng.random() < 0.25:
        return []
    while True:
        on: dict[str, bool] = {}
        age = rng.random()  # older patients: more cardiomegaly, emphysema, degenerative spine
        on["Cardiomegaly"] = rng.random() < 0.18 + 0.22 * age
        on["Effusion"] = rng.random() < (0.38 if on["Cardiomegaly"] else 0.10)
        on["opacity"] = rng.random() < (0.32 if on["Effusion"] else 0.17)
        on["Atelectasis"] = rng.random() < (0.30 if (on["Effusion"] or on["opacity"]) else 0.12)
        on["Calcified granuloma"] = rng.random() < 0.24
        on["Nodule"] = rng.random() < (0.30 if on["Calcified granuloma"] else 0.09)
        on["Emphysema"] = rng.random() < 0.06 + 0.20 * age
        on["spine/degenerative"] = rng.random() < 0.08 + 0.38 * age
        labels = [name for name in LABELS if on[name]]
        if labels:
            return labels


def _report(rng: random.Random, labels: list[str]) -> str:
    slots = {name: _slots(rng) for name in LABELS}  # per label, so findings and impression agree

    def finding(name: str) -> str:
        if rng.random() < EQUIVOCAL_RATE:
            return _fill(rng.choice(EQUIVOCAL[name]), slots[name])
        return _fill(rng.choice(POSITIVE[name]), slots[name])

    def normal(name: str, pool: list[str], p: float) -> list[str]:
        """A normal/negated sentence with probability p, or (rarely) an equivocal one."""
        if rng.random() < EQUIVOCAL_RATE / 3:
            return [_fill(rng.choice(EQUIVOCAL[name]), slots[name])]
        return [_fill(rng.choice(pool), slots[name])] if rng.random() < p else []

    findings: list[str] = []
    # Heart / mediastinum.
    findings += [finding("Cardiomegaly")] if "Cardiomegaly" in labels else normal("Cardiomegaly", NORMAL_HEART, 0.85)
    # Lung expansion.
    findings += [finding("Emphysema")] if "Emphysema" in labels else normal("Emphysema", NORMAL_EXPANSION, 0.25)
    # Parenchyma, in a shuffled order.
    paren = [name for name in ("opacity", "Atelectasis", "Calcified granuloma", "Nodule") if name in labels]
    rng.shuffle(paren)
    findings += [finding(name) for name in paren]
    if "opacity" not in labels and "Atelectasis" not in labels:
        findings += [_fill(rng.choice(NORMAL_LUNGS), slots["opacity"])]
    for name in ("opacity", "Atelectasis", "Calcified granuloma"):
        if name not in labels:
            findings += normal(name, [], 0.0)
    if "Nodule" not in labels:
        findings += normal("Nodule", NORMAL_NODULE, 0.2)
    # Pleura.
    findings += [finding("Effusion")] if "Effusion" in labels else normal("Effusion", NORMAL_PLEURA, 0.85)
    # Bones.
    if "spine/degenerative" in labels:
        findings += [finding("spine/degenerative")]
    else:
        findings += normal("spine/degenerative", NORMAL_BONES, 0.45)
    # Look-alike distractors.
    if rng.random() < 0.30:
        distractor = _fill(rng.choice(DISTRACTORS), _slots(rng))
        findings.insert(rng.randrange(len(findings) + 1), distractor)

    # Impression: usually the main finding(s); chronic findings are often left out.
    impression: list[str] = []
    acute = [name for name in ("Cardiomegaly", "Effusion", "opacity", "Nodule") if name in labels]
    for name in labels:
        keep = 0.7 if name in acute else 0.3
        if rng.random() < keep and len(impression) < 2:
            impression.append(_fill(rng.choice(IMPRESSION[name]), slots[name]))
    if not acute or not impression:
        impression.insert(0, rng.choice(NORMAL_IMPRESSION))

    header = rng.choice(HEADERS)

    def render() -> str:
        return f"{header}FINDINGS: {' '.join(findings)} IMPRESSION: {' '.join(impression)}"

    # Keep the length within MIN_WORDS..MAX_WORDS words.
    text = render()
    extra_pool = NORMAL_BONES + NORMAL_NODULE + NORMAL_EXPANSION
    while len(text.split()) < MIN_WORDS:
        findings.append(rng.choice(extra_pool))
        text = render()
    if len(text.split()) > MAX_WORDS:
        header = ""
        text = render()
    while len(text.split()) > MAX_WORDS and len(impression) > 1:
        impression.pop()
        text = render()
    return text


def generate(n: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> list[dict]:
    """`n` synthetic reports as {"id", "text", "labels"} dicts (labels in LABELS order)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        labels = _sample_labels(rng)
        rows.append({"id": f"demo-{i + 1:04d}", "text": _report(rng, labels), "labels": labels})
    return rows


def write(path: str | Path, rows: list[dict]) -> Path:
    """Write rows as JSONL (UTF-8, "\\n" line endings, stable key order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps({"id": row["id"], "text": row["text"], "labels": row["labels"]},
                                ensure_ascii=True) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows = generate(args.n, args.seed)
    path = write(args.out, rows)
    print(f"wrote {len(rows)} synthetic reports to {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
