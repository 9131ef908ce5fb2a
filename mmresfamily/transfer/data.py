"""The COCO-format data of a transfer run: where its files are, its classes, and a json that
pycocotools evaluates correctly."""
import json
import os

# (train json, train images, val json, val images), relative to --data-root, tried in order
LAYOUTS = (
    ('annotations/instances_train.json', 'train/images/', 'annotations/instances_val.json',
     'val/images/'),
    ('annotations/instances_train2017.json', 'train2017/', 'annotations/instances_val2017.json',
     'val2017/'),
)


def evaluable_ann_file(root, ann, tmp):
    """pycocotools counts a detection matched to annotation id 0 as unmatched (its match array
    uses 0 for 'none'), so 0-based ids (e.g. labelme2coco's) lower AP: evaluate on a copy with
    ids + 1 then. Returns the json to use (relative to root, or absolute)."""
    coco = json.loads((root / ann).read_text())
    if all(a.get('id') != 0 for a in coco.get('annotations', [])):
        return ann
    for a in coco['annotations']:
        a['id'] += 1
    fixed = tmp / 'val_ids_from_1.json'
    fixed.write_text(json.dumps(coco))
    if os.environ.get('RANK', '0') == '0':
        print(f'[coco_transfer] note: {root / ann} numbers annotations from 0, which pycocotools '
              'cannot match; evaluating on a copy with ids + 1', flush=True)
    return str(fixed)


def resolve_data(args, tmp):
    """(train json, train images, val json, val images) relative to --data-root; the classes;
    the number of train images."""
    root = args.data_root
    if not root.is_dir():
        raise SystemExit(f'--data-root: not a directory: {root}')
    given = (args.train_ann, args.train_img, args.val_ann, args.val_img)
    flags = ('--train-ann', '--train-img', '--val-ann', '--val-img')
    for layout in LAYOUTS:
        paths = [g if g is not None else d for g, d in zip(given, layout)]
        if all((root / p).exists() for p in paths):
            break
    else:
        tried = ' | '.join(', '.join(f'{f} {g if g is not None else d}'
                                     for f, g, d in zip(flags, given, layout))
                           for layout in LAYOUTS)
        raise SystemExit(f'--data-root {root}: COCO files not found (tried: {tried}); '
                         'give --train-ann/--train-img/--val-ann/--val-img')
    categories, images = {}, {}
    for split, ann in (('train', paths[0]), ('val', paths[2])):
        coco = json.loads((root / ann).read_text())
        if not coco.get('categories'):
            raise SystemExit(f'--{split}-ann {root / ann}: no categories in the json')
        categories[split] = [c['name'] for c in coco['categories']]
        images[split] = len(coco.get('images', []))
    classes = categories['train']
    if args.classes:
        unknown = [c for c in args.classes if c not in classes]
        if unknown:
            raise SystemExit(f'--classes: {unknown} not among the train categories: {classes}')
        classes = [c for c in classes if c in args.classes]  # keep the json's order (labels)
    missing = [c for c in classes if c not in categories['val']]
    if missing:
        raise SystemExit(f'--val-ann: categories {missing} of the train json are missing')
    paths[2] = evaluable_ann_file(root, paths[2], tmp)
    return paths, classes, images['train']
