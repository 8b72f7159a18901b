"""What the sample distributor sells and how it trades, fixed by design: units, regions, demand classes and
their mix, the categories (weight, markup, cost, units, seasonal peak, product nouns), the words names are
made of, pack sizes, and the calibration of customer orders and reviews."""

from __future__ import annotations

from dataclasses import dataclass

UNITS = ("each", "case", "kg", "l", "m")


REGIONS = ("North", "South", "East", "West", "Central")


DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy")


# Share of SKU-locations per demand class, in DEMAND_CLASSES order.
CLASS_MIX = (0.40, 0.20, 0.25, 0.15)


@dataclass(frozen=True)
class Category:
    name: str
    weight: float  # relative share of the assortment
    markup: float  # list price over cost
    cost_median: float
    unit_probs: tuple[float, float, float, float, float]  # over UNITS
    season_peak: float | None  # fraction of the calendar year of the peak, None: not seasonal
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("Beverages", 1.4, 0.30, 1.2, (0.6, 0.3, 0.0, 0.1, 0.0), 0.54,
             ("Sparkling Water", "Cola", "Orange Juice", "Iced Tea", "Energy Drink", "Lemonade", "Apple Juice")),
    Category("Snacks & Confectionery", 1.2, 0.35, 0.9, (0.7, 0.3, 0.0, 0.0, 0.0), 0.95,
             ("Chocolate Bar", "Potato Chips", "Pretzels", "Gummy Bears", "Salted Nuts", "Butter Cookies")),
    Category("Dairy & Chilled", 1.0, 0.25, 1.5, (0.6, 0.1, 0.2, 0.1, 0.0), None,
             ("Butter", "Greek Yogurt", "Cheddar", "Whipping Cream", "Whole Milk", "Mozzarella")),
    Category("Frozen Foods", 0.9, 0.30, 2.5, (0.6, 0.2, 0.2, 0.0, 0.0), 0.55,
             ("Ice Cream Tub", "Frozen Peas", "Fish Fingers", "Stone-Baked Pizza", "Oven Fries", "Ice Lollies")),
    Category("Household Cleaning", 1.0, 0.40, 2.0, (0.6, 0.2, 0.0, 0.2, 0.0), None,
             ("Dish Soap", "Bleach", "Surface Cleaner", "Laundry Detergent", "Scrub Sponges", "Glass Cleaner")),
    Category("Paper & Packaging", 0.9, 0.28, 3.0, (0.5, 0.3, 0.0, 0.0, 0.2), None,
             ("Paper Towels", "Toilet Tissue", "Cling Film", "Aluminium Foil", "Shipping Carton", "Packing Tape")),
    Category("Personal Care", 0.9, 0.45, 2.2, (0.8, 0.2, 0.0, 0.0, 0.0), None,
             ("Shampoo", "Shower Gel", "Toothpaste", "Hand Soap", "Deodorant", "Body Lotion")),
    Category("Garden & Outdoor", 0.7, 0.50, 8.0, (0.6, 0.0, 0.3, 0.0, 0.1), 0.37,
             ("Potting Soil", "Garden Hose", "Lawn Seed", "Plant Food", "Barbecue Charcoal", "Sunscreen")),
    Category("Hardware & Tools", 0.8, 0.55, 12.0, (0.6, 0.2, 0.0, 0.0, 0.2), None,
             ("Wood Screws", "Wall Plugs", "Claw Hammer", "Cable Ties", "Duct Tape", "Drill Bit Set")),
    Category("Office Supplies", 0.8, 0.60, 3.5, (0.7, 0.3, 0.0, 0.0, 0.0), 0.66,
             ("Copy Paper", "Ballpoint Pens", "Spiral Notebook", "Stapler", "Lever Arch File", "Sticky Notes")),
)


BRANDS = ("Northfield", "Bluecrest", "Harvest Lane", "Everfresh", "Kingsway", "Pure Valley", "Solano", "Ironbridge",
          "Meadowbrook", "Atlas", "Clearwater", "Redstone", "Summit", "Greenleaf")


VARIANTS = ("Classic", "Premium", "Value", "Eco", "Original", "Family Pack", "Mini", "XL", "Professional", "Twin Pack")


CUSTOMER_WORDS = ("Northwind", "Blue Harbor", "Oakridge", "Riverside", "Metro", "Pioneer", "Lakeside", "Evergreen",
                  "Red Rock", "Silverline", "Cornerstone", "Highland", "Bayview", "Maple", "Granite", "Sunrise")


CUSTOMER_TRADES = ("Foods", "Hospitality", "Retail", "Trading", "Stores", "Catering", "Markets", "Pharmacies")


LEGAL_FORMS = ("Ltd", "Inc", "LLC", "& Co", "Group")


SUPPLIER_TRADES = ("Manufacturing", "Industries", "Brands", "Wholesale", "Products", "Packaging")


# Pack sizes a buyer would see per unit of measure (0: no more options).
PACK_OPTIONS = {
    "each": (1, 6, 12, 24),
    "case": (1, 0, 0, 0),
    "kg": (1, 5, 25, 0),
    "l": (1, 6, 12, 0),
    "m": (1, 10, 50, 0),
}


MAX_LINES_PER_PO = 25


# Series are generated in blocks of this many so the noise temporaries stay small; a fixed constant, so the
# random stream (and therefore the output) does not depend on the size of the run.
SERIES_BLOCK = 8192


# Customer order lines: customers are drawn by tier weight (strategic, key, standard); an order goes to a DC
# of the customer's region with this share, else to any DC; it is promised this many days ahead (low
# inclusive, high exclusive), with a priority in the tier's range; a line is this share of a week's demand
# of its SKU-location, times the tier's factor.
ORDER_TIER_WEIGHT = (4.0, 2.0, 1.0)


HOME_DC_SHARE = 0.85


PROMISE_DAYS = (7, 43)


PRIORITY_RANGE = ((1, 2, 3), (2, 3, 5))


LINE_SHARE = (0.05, 0.6)


LINE_TIER_FACTOR = (2.0, 1.3, 1.0)


# Periodic review: every SKU-location is reviewed weekly, on its supplier's order day.
REVIEW_DAYS = 7
