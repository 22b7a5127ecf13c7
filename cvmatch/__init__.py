"""cvmatch: recognise a book from a phone photo of its cover.

Classical computer vision, in the order the data flows:

1. :mod:`cvmatch.catalogue` reads the catalogue CSV of books and cover images;
2. :mod:`cvmatch.images` loads covers and photos as upright greyscale pixels;
3. :mod:`cvmatch.features` finds ORB or RootSIFT keypoints and descriptors;
4. :mod:`cvmatch.vocabulary` quantises descriptors into visual words;
5. :mod:`cvmatch.inverted_index` scores covers by TF-IDF over those words;
6. :mod:`cvmatch.verification` checks the best candidates with a RANSAC homography;
7. :mod:`cvmatch.matcher` ranks them and names one book, or none;
8. :mod:`cvmatch.storage` saves and loads the whole index.

Examples
--------
>>> import cvmatch
>>> catalogue = cvmatch.read_catalogue("sample_covers/catalogue.csv")
>>> index = cvmatch.CoverIndex.build(catalogue, preset="orb", branching=32)
>>> result = index.match("sample_covers/photos/query03.png")
>>> result.book.title, result.goodreads_url
('Jurassic Park', 'https://www.goodreads.com/book/show/7677')
"""

from .catalogue import Book, CatalogueEntry, read_catalogue
from .errors import (
    CatalogueError,
    CvmatchError,
    ImageError,
    IndexFormatError,
    IndexStateError,
    MissingExtraError,
    ParameterError,
)
from .features import PRESETS
from .images import load_image
from .matcher import Candidate, CoverIndex, MatchResult
from .storage import load_index, save_index

__version__ = "0.1.0"

__all__ = [
    "Book",
    "Candidate",
    "CatalogueEntry",
    "CatalogueError",
    "CoverIndex",
    "CvmatchError",
    "ImageError",
    "IndexFormatError",
    "IndexStateError",
    "MatchResult",
    "MissingExtraError",
    "PRESETS",
    "ParameterError",
    "load_image",
    "load_index",
    "read_catalogue",
    "save_index",
]
