#!/usr/bin/env python3
"""Generate the synthetic somatic-variant table used by the hubstack demo notebook.

Every row of variants.tsv is SYNTHETIC: invented donors, invented calls. The
donor IDs only look like ICGC IDs, and no row comes from a real person or a
controlled-access dataset. Gene symbols are real. Positions fall inside each
gene's approximate GRCh38 span, except that a few well-known hotspots (KRAS G12,
PIK3CA H1047R, TP53 R175H, the TERT promoter, ...) sit at or near their
published GRCh38 coordinates. Treat the coordinates as illustrative, not as an
annotation reference. The point is that the table behaves like a real call set
in pandas.

The output is deterministic: a fixed seed, the standard library only, and no
network access. Regenerate with

    python3 make_variants.py            # writes variants.tsv next to this script
    python3 make_variants.py -o out.tsv
"""

import argparse
import math
import random
from pathlib import Path

SEED = 20240611

# Four projects, ten donors each: DO1001-DO1010 are BRCA-US, DO1011-DO1020 are
# PACA-CA, DO1021-DO1030 are LIRI-JP and DO1031-DO1040 are PRAD-UK.
PROJECTS = ["BRCA-US", "PACA-CA", "LIRI-JP", "PRAD-UK"]
DONORS_PER_PROJECT = 10
FIRST_DONOR = 1001

# gene -> (chromosome, approximate GRCh38 start, end, role)
# role: "onc" = oncogene (mostly missense hotspots), "tsg" = tumour suppressor
# (many truncating changes), "bg" = long gene that collects passengers.
GENES = {
    "ARID1A": ("1", 26693236, 26782104, "tsg"),
    "RYR2": ("1", 237042205, 237833988, "bg"),
    "APOB": ("2", 21001429, 21044073, "bg"),
    "LRP1B": ("2", 140231423, 142131016, "bg"),
    "NFE2L2": ("2", 177230303, 177265131, "onc"),
    "TTN": ("2", 178525989, 178830802, "bg"),
    "SF3B1": ("2", 197388515, 197435079, "onc"),
    "IDH1": ("2", 208236227, 208255071, "onc"),
    "TGFBR2": ("3", 30606502, 30694142, "tsg"),
    "CTNNB1": ("3", 41194741, 41260096, "onc"),
    "PBRM1": ("3", 52545352, 52685917, "tsg"),
    "PIK3CA": ("3", 179148114, 179240093, "onc"),
    "ALB": ("4", 73404256, 73421482, "tsg"),
    "FAT4": ("4", 125316399, 125492932, "bg"),
    "TERT": ("5", 1253147, 1295068, "onc"),
    "MAP3K1": ("5", 56815549, 56896152, "tsg"),
    "CHD1": ("5", 98853985, 98930000, "tsg"),
    "APC": ("5", 112707498, 112846239, "tsg"),
    "ARID1B": ("6", 156776026, 157210779, "tsg"),
    "EGFR": ("7", 55019017, 55211628, "onc"),
    "BRAF": ("7", 140719327, 140924929, "onc"),
    "KMT2C": ("7", 152134922, 152436005, "tsg"),
    "CSMD3": ("8", 112222928, 113436939, "bg"),
    "CDKN2A": ("9", 21967752, 21995301, "tsg"),
    "NOTCH1": ("9", 136494433, 136546048, "tsg"),
    "GATA3": ("10", 8045378, 8075198, "tsg"),
    "PTEN": ("10", 87863113, 87971930, "tsg"),
    "ATM": ("11", 108222832, 108369102, "tsg"),
    "KRAS": ("12", 25205246, 25250929, "onc"),
    "KMT2D": ("12", 49018975, 49060794, "tsg"),
    "BRCA2": ("13", 32315474, 32400266, "tsg"),
    "RB1": ("13", 48303747, 48481890, "tsg"),
    "FOXA1": ("14", 37589552, 37595249, "onc"),
    "B2M": ("15", 44711477, 44718877, "tsg"),
    "AXIN1": ("16", 287440, 352723, "tsg"),
    "CDH1": ("16", 68737292, 68835537, "tsg"),
    "ZFHX3": ("16", 72782885, 73891871, "tsg"),
    "TP53": ("17", 7661779, 7687538, "tsg"),
    "NF1": ("17", 31094927, 31382116, "tsg"),
    "ERBB2": ("17", 39687914, 39730426, "onc"),
    "BRCA1": ("17", 43044295, 43125483, "tsg"),
    "SPOP": ("17", 49598884, 49678163, "onc"),
    "RNF43": ("17", 58352500, 58417595, "tsg"),
    "SMAD4": ("18", 51030213, 51085042, "tsg"),
    "MUC16": ("19", 8848844, 8981342, "bg"),
    "KEAP1": ("19", 10486120, 10503934, "tsg"),
    "GNAS": ("20", 58839718, 58911192, "onc"),
    "RUNX1": ("21", 34787801, 36004667, "tsg"),
    "EP300": ("22", 41092592, 41180077, "tsg"),
    "KDM6A": ("X", 44873188, 45112779, "tsg"),
    "AR": ("X", 67544021, 67730619, "onc"),
    "ATRX": ("X", 77504880, 77786233, "tsg"),
    # More long genes that only collect passengers (approximate spans).
    "COL11A1": ("1", 102876467, 103108580, "bg"),
    "FLG": ("1", 152302165, 152325239, "bg"),
    "SPTA1": ("1", 158610704, 158686715, "bg"),
    "HMCN1": ("1", 185734574, 186220776, "bg"),
    "USH2A": ("1", 215622891, 216423448, "bg"),
    "OBSCN": ("1", 228208131, 228378874, "bg"),
    "NEB": ("2", 151485000, 151734000, "bg"),
    "XIRP2": ("2", 167222000, 167487000, "bg"),
    "DNAH5": ("5", 13690329, 13944540, "bg"),
    "ADGRV1": ("5", 90529000, 91164000, "bg"),
    "DNAH8": ("6", 38715000, 39032000, "bg"),
    "PKHD1": ("6", 51615299, 52087055, "bg"),
    "LAMA2": ("6", 128883000, 129516000, "bg"),
    "SYNE1": ("6", 152121687, 152637801, "bg"),
    "DNAH11": ("7", 21542000, 21901839, "bg"),
    "RELN": ("7", 103471784, 103989658, "bg"),
    "CSMD1": ("8", 2935353, 4994972, "bg"),
    "ZFHX4": ("8", 76681000, 76867000, "bg"),
    "PCDH15": ("10", 53802000, 55627000, "bg"),
    "FAT3": ("11", 92351000, 92980000, "bg"),
    "AHNAK2": ("14", 104937244, 104978374, "bg"),
    "PTPRT": ("20", 42072752, 43189970, "bg"),
    "DMD": ("X", 31097677, 33339441, "bg"),
}

# Recurrent hotspots: gene -> [(position, ref, alt), ...] (GRCh38).
HOTSPOTS = {
    # G12D is listed twice so that it is the most common KRAS allele.
    "KRAS": [
        (25245350, "C", "T"),
        (25245350, "C", "T"),
        (25245350, "C", "A"),
        (25245351, "C", "G"),
        (25227341, "T", "G"),
    ],
    "PIK3CA": [(179234297, "A", "G"), (179218303, "G", "A"), (179218294, "G", "A")],
    "TP53": [(7675088, "C", "T"), (7673802, "C", "T"), (7674220, "C", "T"), (7673803, "G", "A")],
    "CTNNB1": [(41224610, "G", "A"), (41224613, "C", "T"), (41224622, "A", "C"), (41224646, "T", "C")],
    "BRAF": [(140753336, "A", "T")],
    "IDH1": [(208248388, "C", "T")],
    "SF3B1": [(197402110, "T", "C")],
    "GNAS": [(58909365, "C", "T"), (58909366, "G", "A")],
    "SPOP": [(49619063, "A", "C"), (49619066, "A", "C"), (49621338, "T", "C")],
    "ERBB2": [(39724772, "G", "A")],
    "NFE2L2": [(177234085, "T", "C"), (177234091, "T", "A")],
    "EGFR": [(55191822, "T", "G")],
    "FOXA1": [(37591900, "C", "T"), (37592012, "G", "C")],
    "AR": [(67711595, "A", "G")],
    # TERT promoter (C228T, C250T): upstream of the gene, not coding.
    "TERT": [(1295113, "G", "A"), (1295135, "G", "A")],
}

# Share of each project's donors that carry a driver mutation in each gene.
# The rates are loosely shaped like published cohorts, but invented.
DRIVER_RATES = {
    "BRCA-US": {
        "PIK3CA": 0.40,
        "TP53": 0.35,
        "GATA3": 0.15,
        "CDH1": 0.15,
        "MAP3K1": 0.12,
        "KMT2C": 0.12,
        "PTEN": 0.08,
        "BRCA1": 0.06,
        "BRCA2": 0.06,
        "ERBB2": 0.05,
        "ARID1A": 0.05,
        "NF1": 0.05,
        "RUNX1": 0.04,
    },
    "PACA-CA": {
        "KRAS": 0.92,
        "TP53": 0.70,
        "CDKN2A": 0.35,
        "SMAD4": 0.25,
        "ARID1A": 0.08,
        "RNF43": 0.07,
        "GNAS": 0.06,
        "TGFBR2": 0.05,
        "BRCA2": 0.05,
        "KMT2D": 0.05,
        "ATM": 0.05,
    },
    "LIRI-JP": {
        "TERT": 0.55,
        "CTNNB1": 0.30,
        "TP53": 0.30,
        "ALB": 0.12,
        "AXIN1": 0.10,
        "ARID1A": 0.10,
        "APOB": 0.10,
        "ARID1B": 0.08,
        "KMT2D": 0.06,
        "NFE2L2": 0.05,
        "RB1": 0.05,
        "KEAP1": 0.04,
    },
    "PRAD-UK": {
        "SPOP": 0.12,
        "TP53": 0.10,
        "FOXA1": 0.08,
        "KMT2D": 0.08,
        "ATM": 0.06,
        "CHD1": 0.06,
        "PTEN": 0.05,
        "ZFHX3": 0.05,
        "KMT2C": 0.05,
        "BRCA2": 0.04,
        "CDKN2A": 0.03,
        "AR": 0.02,
    },
}

# Mean number of passenger calls per donor (mutational burden), by project.
PASSENGER_MEAN = {"BRCA-US": 8.0, "PACA-CA": 8.0, "LIRI-JP": 10.0, "PRAD-UK": 5.0}

# Long genes pick up passengers more often, small oncogenes rarely. Other
# background ("bg") genes get weight 1.5 and everything else weight 1.
PASSENGER_WEIGHT = {
    "TTN": 5,
    "MUC16": 3,
    "CSMD3": 2.5,
    "LRP1B": 2.5,
    "RYR2": 2.5,
    "FAT4": 2,
    "CSMD1": 2.5,
    "DMD": 2,
    "PCDH15": 2,
}
BACKGROUND_PASSENGER_WEIGHT = 1.5
ONCOGENE_PASSENGER_WEIGHT = 0.2

COLUMNS = ["sample_id", "project", "chromosome", "position", "ref", "alt", "gene", "consequence", "vaf", "depth"]
CHROM_ORDER = {c: i for i, c in enumerate([str(n) for n in range(1, 23)] + ["X"])}
BASES = "ACGT"
TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}


def pick_consequence(rng, role, driver):
    """Choose a consequence class suited to the gene's role."""
    if role == "tsg" and driver:
        table = [
            ("missense_variant", 40),
            ("stop_gained", 22),
            ("frameshift_variant", 24),
            ("splice_site_variant", 9),
            ("inframe_deletion", 5),
        ]
    elif role == "onc" and driver:
        table = [("missense_variant", 95), ("inframe_deletion", 5)]
    else:  # passengers
        table = [
            ("missense_variant", 52),
            ("synonymous_variant", 33),
            ("stop_gained", 5),
            ("frameshift_variant", 5),
            ("splice_site_variant", 3),
            ("inframe_deletion", 2),
        ]
    names, weights = zip(*table, strict=False)
    return rng.choices(names, weights=weights)[0]


def alleles(rng, consequence):
    """Return plausible (ref, alt) strings for a consequence class."""
    if consequence == "frameshift_variant":
        anchor = rng.choice(BASES)
        if rng.random() < 0.6:  # deletion of 1, 2 or 4 bases
            n = rng.choice([1, 1, 1, 2, 4])
            return anchor + "".join(rng.choices(BASES, k=n)), anchor
        n = rng.choice([1, 1, 2])  # insertion
        return anchor, anchor + "".join(rng.choices(BASES, k=n))
    if consequence == "inframe_deletion":
        anchor = rng.choice(BASES)
        n = rng.choice([3, 3, 6])
        return anchor + "".join(rng.choices(BASES, k=n)), anchor
    ref = rng.choice(BASES)
    if rng.random() < 0.65:  # transitions dominate somatic SNVs
        return ref, TRANSITION[ref]
    return ref, rng.choice([b for b in BASES if b != ref and b != TRANSITION[ref]])


def binomial(rng, n, p):
    return sum(1 for _ in range(n) if rng.random() < p)


def poisson(rng, lam):
    # Knuth's method is fine for the small means used here.
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def make_call(rng, donor, project, gene, purity, driver):
    chrom, start, end, role = GENES[gene]
    consequence = pick_consequence(rng, role, driver)
    if driver and gene == "TERT":
        consequence = "upstream_gene_variant"
        pos, ref, alt = rng.choice(HOTSPOTS[gene])
    elif driver and role == "onc" and gene in HOTSPOTS:
        # Oncogene drivers sit on recurrent hotspots.
        consequence = "missense_variant"
        pos, ref, alt = rng.choice(HOTSPOTS[gene])
    elif driver and gene in HOTSPOTS and consequence == "missense_variant":
        pos, ref, alt = rng.choice(HOTSPOTS[gene])
    else:
        pos = rng.randint(start, end)
        ref, alt = alleles(rng, consequence)
    depth = max(12, int(rng.gammavariate(6.0, 16.0)))
    # Drivers are usually clonal (VAF ~ purity / 2); passengers are often subclonal.
    cell_fraction = rng.uniform(0.85, 1.0) if driver else rng.choice([rng.uniform(0.8, 1.0), rng.uniform(0.1, 0.6)])
    expected = purity * cell_fraction / 2
    if chrom == "X" or (driver and rng.random() < 0.15):  # hemizygous / LOH
        expected *= 2
    vaf = binomial(rng, depth, min(expected, 0.99)) / depth
    vaf = round(min(max(vaf, 0.02), 0.98), 3)
    return {
        "sample_id": donor,
        "project": project,
        "chromosome": chrom,
        "position": pos,
        "ref": ref,
        "alt": alt,
        "gene": gene,
        "consequence": consequence,
        "vaf": vaf,
        "depth": depth,
    }


def generate(seed=SEED):
    rng = random.Random(seed)
    passenger_genes = sorted(GENES)
    default_weight = {"onc": ONCOGENE_PASSENGER_WEIGHT, "bg": BACKGROUND_PASSENGER_WEIGHT}
    passenger_weights = [PASSENGER_WEIGHT.get(g, default_weight.get(GENES[g][3], 1)) for g in passenger_genes]
    rows = []
    donor_number = FIRST_DONOR
    for project in PROJECTS:
        donors = [f"DO{donor_number + i}" for i in range(DONORS_PER_PROJECT)]
        donor_number += DONORS_PER_PROJECT
        # With only ten donors per project, independent coin flips per donor are
        # too noisy, so each driver gene goes to round(rate * donors) donors
        # (rounded stochastically, so rare genes still turn up now and then).
        drivers = {donor: [] for donor in donors}
        for gene, rate in DRIVER_RATES[project].items():
            k = int(rate * len(donors) + rng.random())
            for donor in rng.sample(donors, k):
                drivers[donor].append(gene)
        for donor in donors:
            purity = rng.uniform(0.3, 0.95)
            calls = [make_call(rng, donor, project, gene, purity, True) for gene in drivers[donor]]
            for _ in range(poisson(rng, PASSENGER_MEAN[project])):
                gene = rng.choices(passenger_genes, weights=passenger_weights)[0]
                calls.append(make_call(rng, donor, project, gene, purity, False))
            seen = set()
            for call in calls:
                key = (call["chromosome"], call["position"])
                if key not in seen:  # one call per site per donor
                    seen.add(key)
                    rows.append(call)
    rows.sort(key=lambda r: (r["sample_id"], CHROM_ORDER[r["chromosome"]], r["position"]))
    return rows


def write_tsv(rows, path):
    with open(path, "w", newline="\n", encoding="ascii") as fh:
        fh.write("\t".join(COLUMNS) + "\n")
        for row in rows:
            fh.write("\t".join(str(row[c]) for c in COLUMNS) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parent / "variants.tsv")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    rows = generate(args.seed)
    write_tsv(rows, args.output)
    print(f"wrote {len(rows)} synthetic variant calls to {args.output}")


if __name__ == "__main__":
    main()
