"""The lexical judge's fixed knowledge: thresholds, notation tables, relation and shape words, patterns."""

from __future__ import annotations

import re

from perception_verl.judge.sanitize import NEUTRAL_CLOSE, NEUTRAL_OPEN

FALLBACK_OVERLAP = 0.6
SPAN_BASE = 6
SPAN_PER_KEY = 4
"""A fact's key tokens must lie within ``SPAN_BASE + SPAN_PER_KEY * (keys - 1)`` tokens of one
another (plus the length of any expression among them), inside one sentence."""
NEGATION_LOOKBACK = 3
"""Tokens before a fact's first key token in which a negation still denies it (up to a comma or a
conjunction)."""
DECOY_LIMIT = 0.25
DECOY_MIN_HITS = 2
"""A response that states at least ``DECOY_MIN_HITS`` decoy facts and at least ``DECOY_LIMIT`` of
all decoys (facts one key token away from the real ones) is treated as stuffing: no fact counts."""

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "\u2012": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\u2014": " ",  # em dash: prose
    "\uff1d": "=",
    "\u2220": " angle ",  # ∠
    "\u2221": " angle ",  # ∡
    "\u25b3": " triangle ",  # △
    "\u25b5": " triangle ",
    "\u0394": " triangle ",  # Δ
    "\u2206": " triangle ",
    "\u2225": " parallel ",  # ∥
    "\u2016": " parallel ",  # ‖
    "\u22a5": " perpendicular ",  # ⊥
    "\u27c2": " perpendicular ",
    "\u2245": " congruent ",  # ≅
    "\u223c": " similar ",  # ∼
    "\u00b0": " degrees ",  # °
    "\u00ba": " degrees ",
    "\u2299": " circle ",  # ⊙
    "\u221a": " sqrt ",  # √
    "\u00d7": "*",
    "\u00b7": "*",
    "\u22c5": "*",
    "\u03c0": " pi ",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u2260": " not equal ",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2248": " approximately ",
}

_UNICODE_CHAR = re.compile("[" + re.escape("".join(_UNICODE)) + "]")

_LATEX_WORDS = {
    "angle": " angle ",
    "measuredangle": " angle ",
    "triangle": " triangle ",
    "bigtriangleup": " triangle ",
    "parallel": " parallel ",
    "perp": " perpendicular ",
    "bot": " perpendicular ",
    "cong": " congruent ",
    "sim": " similar ",
    "odot": " circle ",
    "circledcirc": " circle ",
    "circ": " degrees ",
    "degree": " degrees ",
    "cdot": "*",
    "times": "*",
    "pi": " pi ",
    "neq": " not equal ",
    "ne": " not equal ",
    "approx": " approximately ",
    "le": "<=",
    "leq": "<=",
    "ge": ">=",
    "geq": ">=",
    "sqrt": " sqrt ",
    "overarc": " arc ",
    "overparen": " arc ",
    "wideparen": " arc ",
    "arc": " arc ",
}

_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+)|\\[,;:! ]|\\[()\[\]]")
_DOUBLE_BAR = re.compile(r"(?<=[A-Z])\s*\|\|\s*(?=[A-Z])")
_SQRT = re.compile(r"sqrt\s*(?:\{([^{}]*)\}|\(([^()]*)\)|(\d+(?:\.\d+)?|[A-Za-z]\b))")

# A neutralised verdict-tag block ("‹info1›1‹/info1›") and its content, then any leftover tag.
_TAG_BLOCK = re.compile(
    rf"{NEUTRAL_OPEN}\s*info\s*(\d+)[^{NEUTRAL_CLOSE}\n]*{NEUTRAL_CLOSE}"
    rf".*?{NEUTRAL_OPEN}\s*/\s*info\s*\1[^{NEUTRAL_CLOSE}\n]*{NEUTRAL_CLOSE}",
    re.IGNORECASE | re.DOTALL,
)
# Any neutralised opening tag and its matching closing tag (look-alike spellings: "‹ınfo1›...‹/ınfo1›").
_TAG_PAIR = re.compile(
    rf"{NEUTRAL_OPEN}([^{NEUTRAL_CLOSE}/\n]{{1,200}}?){NEUTRAL_CLOSE}.*?{NEUTRAL_OPEN}\s*/\s*\1{NEUTRAL_CLOSE}",
    re.DOTALL,
)
_TAG_ANY = re.compile(rf"{NEUTRAL_OPEN}[^{NEUTRAL_CLOSE}\n]{{0,200}}{NEUTRAL_CLOSE}?")

# The compact view drops the (single) space before or after an operator or inside parentheses.
_SPACE_BEFORE_OPERATOR = re.compile(r" (?=[-+*/^=<>)])")
_SPACE_AFTER_OPERATOR = re.compile(r"(?<=[-+*/^=<>(]) ")
_SQRT_BRACE = re.compile(r"\\sqrt\s*\{")
_DEGREE_MARK = re.compile(r"\^\s*\{?\s*(?:\\circ|o)\s*\}?(?![A-Za-z])")
_MATH_WORD = re.compile(r"[0-9a-z.+\-*/^=()<>]+")
_PURE_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_VARIABLE = re.compile(r"[b-z]")
_TOKEN = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n[ \t]*\n")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|cannot|none|nothing)\b|n['\u2019]t\b")
_NEGATION_WORDS = frozenset({"not", "no", "never", "neither", "nor", "cannot", "none", "nothing"})
_CONTRAST_WORDS = frozenset({"but", "and", "so", "however", "whereas", "while", "then", "thus", "hence"})
_PAUSE_MARK = re.compile("[,:;]")

# "ngle" first gives the regex engine a literal to scan for; the caller checks the "a"/"A" before it.
_ANGLE_NAME = re.compile(r"ngles?\s+(?:of\s+)?([A-Z]{1,3}|\d+)(?![A-Za-z0-9])")
_POINT_GROUP = re.compile(r"(?<![A-Za-z0-9_])([A-Z]{1,6})(?![A-Za-z0-9_])")

# Relation words: concept -> the single words (full match, lower case) that express it.
_RELATION_WORDS = {
    "parallel": r"parallels?",
    "parallelogram": r"parallelograms?",
    "perpendicular": r"perpendicular(?:s|ly|ity)?",
    "tangent": r"tangen(?:t|ts|cy|tial|tially)",
    "diameter": r"diameters?",
    "radius": r"radi(?:us|i|uses)",
    "chord": r"chords?",
    "secant": r"secants?",
    "arc": r"arcs?",
    "sector": r"sectors?",
    "semicircle": r"semicircles?|semicircular",
    "circumference": r"circumferences?",
    "bisect": r"bisect[a-z]*",
    "congruent": r"congruen(?:t|ce|cy)",
    "similar": r"similar(?:ity|ly)?",
    "equilateral": r"equilateral",
    "isosceles": r"isosceles",
    "scalene": r"scalene",
    "midpoint": r"midpoints?",
    "median": r"medians?",
    "altitude": r"altitudes?",
    "hypotenuse": r"hypotenuses?",
    "perimeter": r"perimeters?",
    "area": r"areas?",
    "diagonal": r"diagonals?",
    "inscribed": r"inscrib[a-z]*",
    "circumscribed": r"circumscrib[a-z]*",
    "rectangle": r"rectang[a-z]*",
    "rhombus": r"rhomb(?:us|i|uses)",
    "trapezoid": r"trapez(?:oid|oids|ium|iums|ia)",
    "kite": r"kites?",
    "center": r"cent(?:er|re)(?:s|d|ed)?",
    "regular": r"regular",
    "supplementary": r"supplementary",
    "complementary": r"complementary",
    "collinear": r"collinear(?:ity)?",
    "concentric": r"concentric",
}
# Shape words: key tokens only for an annotation with no other key token.
_SHAPE_WORDS = {
    "triangle": r"triangles?",
    "circle": r"circles?",
    "quadrilateral": r"quadrilaterals?",
    "pentagon": r"pentagons?",
    "hexagon": r"hexagons?",
    "polygon": r"polygons?",
    "angle": r"angles?",
    "line": r"lines?",
    "segment": r"segments?",
    "ray": r"rays?",
    "point": r"points?",
}
_CONCEPT_WORD = re.compile(
    "|".join(f"(?P<{name}>{pattern})" for name, pattern in {**_RELATION_WORDS, **_SHAPE_WORDS}.items())
)
_SHAPES = frozenset(_SHAPE_WORDS)
# Relations spelled with more than one word: (trigger word, concept, pattern on the lower-case text).
_PHRASES = (
    ("right", "right", re.compile(r"\bright[\s-]*(?:angle|angled|triangle)")),
    ("vertical", "vertical", re.compile(r"\bvertical(?:ly)?[\s-]+(?:opposite[\s-]+)?angles?\b")),
    ("square", "square", re.compile(r"\bsquare\b(?!\s*root)")),
    ("squares", "square", re.compile(r"\bsquares\b")),
    ("mid", "midpoint", re.compile(r"\bmid[\s-]points?\b")),
    ("semi", "semicircle", re.compile(r"\bsemi[\s-]circle")),
)

_ALPHA = re.compile(r"[a-z]+")
_STOP_TEXT = (
    "the and are for that this with from into onto its has have had was were will been being "
    "which what when where who whom whose there their then than them they these those such "
    "figure diagram image picture shown shows show given also each both all any some "
    "not but can may might must should would could does did done very more most other"
)
_STOP_WORDS = frozenset(_STOP_TEXT.split())
