import csv, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from dvc_project import Project
import offline_data

root = Path(__file__).parent / "exp1"
import shutil; shutil.rmtree(root, ignore_errors=True); root.mkdir()
p = Project(root)
epochs = sys.argv[1]
p.set_params(**{"train.max_epochs": epochs, "train.max_length": "32"})
def repro(label):
    t = time.time(); out = p.dvc("repro").stdout; dt = time.time() - t
    m = json.loads((p.week / "metrics.json").read_text())
    print(label, f"{dt:.1f}s", m, flush=True)
repro("v1")
p.set_params(**{"data.version": "v2"}); repro("v2")
existing = {r["sentence"] for f in ("train", "validation") for r in csv.DictReader(open(p.week / f"data/{f}.csv"))}
new = [r for r in offline_data.generate(seed=11, n_train=2000, n_validation=0)["train"] if r["sentence"] not in existing]
print("new rows", len(new))
lab = p.week / "data/labelled"; lab.mkdir(parents=True)
with open(lab / "v3.csv", "w", newline="") as h:
    w = csv.writer(h, lineterminator="\n"); w.writerow(["sentence", "label"])
    for r in new[:200]: w.writerow([r["sentence"], r["label"]])
p.set_params(**{"data.version": "v3"}); repro("v3 good 200")
with open(lab / "v4.csv", "w", newline="") as h:
    w = csv.writer(h, lineterminator="\n"); w.writerow(["sentence", "label"])
    for r in new[200:]: w.writerow([r["sentence"], 1 - int(r["label"])])
p.set_params(**{"data.version": "v4"}); repro(f"v4 flipped {len(new)-200}")
