"""Report which public docstrings of sklearn_ae lack a numpydoc section.

Run from the repository root::

    python docs/check_docstrings.py

For every name in ``sklearn_ae.__all__`` and every public method that sklearn_ae itself defines
(not those inherited from scikit-learn), list the missing sections among Parameters, Returns,
See Also and Examples (and Attributes for classes; properties need only a docstring). The exit status is the
number of docstrings with a missing section, so the script can gate CI once they are complete.
The docs build itself already fails on undocumented or misnamed parameters (numpydoc checks
PR01, PR02 and GL08 in ``docs/conf.py``).
"""

import inspect
import sys
from pathlib import Path

from numpydoc.docscrape import ClassDoc
from numpydoc.validate import validate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import sklearn_ae  # noqa: E402

CHECKS = {
    "GL08": "no docstring",
    "PR01": "Parameters: a parameter is not documented",
    "PR02": "Parameters: documents a parameter that does not exist",
    "RT01": "no Returns section",
    "SA01": "no See Also section",
    "EX01": "no Examples section",
}


def public_members(cls):
    """Public methods and properties defined by sklearn_ae classes in ``cls``'s MRO."""
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or not owner.__module__.startswith("sklearn_ae"):
            continue
        attr = inspect.getattr_static(cls, name)
        if inspect.isfunction(attr) or isinstance(attr, property):
            yield name


def main():
    problems = 0
    for public in sklearn_ae.__all__:
        obj = getattr(sklearn_ae, public)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        targets = [f"sklearn_ae.{public}"]
        if inspect.isclass(obj) and not issubclass(obj, Exception):
            targets += [f"sklearn_ae.{public}.{m}" for m in public_members(obj)]
        for target in targets:
            result = validate(target)
            missing = [CHECKS[code] for code, _ in result["errors"] if code in CHECKS]
            member = eval(target, {"sklearn_ae": sklearn_ae})  # noqa: S307 (our own names)
            if isinstance(inspect.getattr_static(obj, target.rsplit(".", 1)[-1], None), property):
                missing = [m for m in missing if m.startswith("no docstring")]  # attributes
            if inspect.isclass(member) and not issubclass(member, Exception):
                if not ClassDoc(member, config={"show_class_members": False})["Attributes"]:
                    missing.append("no Attributes section")
                missing = [m for m in missing if not m.startswith("no Returns")]
            if issubclass(obj, Exception) if inspect.isclass(obj) else False:
                missing = [m for m in missing if m.startswith("no docstring")]
            if missing:
                problems += 1
                print(f"{target}  ({Path(result['file'] or '?').name}): " + "; ".join(missing))
    print(f"{problems} docstring(s) with a missing section")
    return min(problems, 255)


if __name__ == "__main__":
    sys.exit(main())
