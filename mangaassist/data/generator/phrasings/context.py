"""Backstory users type around their ask: no ask of its own, so it never changes the label.

Long messages are built from several of these plus the ask, which gives the corpus its long
tail (a few messages well over 128 WordPiece tokens, so truncation is real).
"""

BACKSTORY: list[str] = [
    "so i've been collecting manga for like six years now and my shelves are basically full",
    "my partner keeps telling me i have a problem but honestly it's fine",
    "i just got back from a trip to japan and picked up a bunch of stuff but not everything",
    "i got into {title} during lockdown and binged the whole thing in a week",
    "sorry if this is a weird question, i'm kind of new to buying physical copies",
    "i usually buy from a local shop but they closed down last month",
    "my english isn't perfect so sorry in advance",
    "typing this on my phone on the bus so excuse the typos",
    "i've ordered from you a few times before and it's always been fine",
    "my little brother is the one who got me into manga in the first place",
    "i read scanlations for years but i want to support the official releases now",
    "the {title} anime just finished and i need to know what happens next",
    "i have a whole shelf of {demo} stuff but i want to branch out a bit",
    "for context i'm in {country}",
    "i work nights so i'm usually messaging at weird hours, sorry",
    "my book club picked {title} this month and half of us don't have it yet",
    "i'm on a bit of a budget this month because rent went up",
    "i started with {title} years ago and kind of fell off manga for a while",
    "{relative} and i trade volumes back and forth so we try not to double buy",
    "i moved to {city} recently and i'm still figuring out deliveries here",
    "i'm trying to get back into reading instead of doomscrolling all night",
    "last time i ordered it came super fast so i was pretty happy",
    "i collect the {format}s mostly because the regular ones take up too much space",
    "honestly i only found this site because a friend sent me a link",
    "i'm a teacher and i run a small manga club at school",
    "i have a long train commute so i go through volumes really fast",
    "my cat knocked half my shelf over yesterday which is a whole other story",
    "i've been saving up for a while for this",
    "i watched the {title} movie on the plane and got hooked",
    "i know this might be a dumb question",
    "i tried looking on the site first but couldn't figure it out",
    "my friend recommended your store on discord",
    "i'm writing this at 2am because i can't sleep",
    "i'm kind of picky about print quality since i reread a lot",
    "{author} is basically the reason i read manga at all",
    "i had a rough week and buying manga is my one treat",
    "i mostly read digital but i want physical copies of my favourites",
    "this is my first time ordering from outside {country}",
    "i used to buy from {store} but their prices went up",
    "i'm planning a gift for {relative} who is really into {genre}",
    "it's for a birthday on {weekday} so timing matters a bit",
    "i already asked in a discord server and nobody knew",
    "i finished {title} {vol} last night and i'm still thinking about it",
    "my shelf is sorted by publisher so i'm weirdly particular about editions",
    "i grew up watching the anime on tv after school",
    "i'm learning japanese so i sometimes read the originals too",
    "english is my second language, i hope this makes sense",
    "i checked the faq page but it didn't really answer my question",
    "i'm kind of in a hurry so sorry for the messy message",
    "i've been looking forward to this for months",
]

OPENERS: list[str] = [
    "ok so",
    "so basically",
    "long story short",
    "quick background",
    "bear with me",
    "ok this is a long one",
    "alright",
    "so um",
    "not sure where to ask this but",
]

CLOSERS: list[str] = [
    "sorry for the wall of text",
    "idk if that makes sense",
    "anyway yeah",
    "lol",
    "sorry for rambling",
    "that's it i think",
    "hope that makes sense",
    "ok that's all",
]

# The same for users who write Japanese alone: clauses with no ask and no intent cue, joined
# by compose ("。", "、", "…"), so they never end in 。 themselves.
BACKSTORY_JA: list[str] = [
    "漫画を集め始めてもう五年くらいになります",
    "本棚がいっぱいで、そろそろ二つ目を買おうか迷ってるところです",
    "最近{title_jp}にハマって、数日で最新巻まで一気に読みました",
    "仕事帰りの電車で読むのが毎日の楽しみなんです",
    "いつもは近所の本屋さんで買ってたんですが、先月閉店してしまって",
    "こちらのお店を使うのは今回が初めてです",
    "何度か利用させてもらっていて、いつも助かってます",
    "スマホから打ってるので読みにくかったらごめんなさい",
    "子どもの頃にアニメを見ていて、大人になってから原作を読み始めました",
    "海外に住んでいるので、日本の漫画はなかなか手に入らないんです",
    "友達に教えてもらってこのサイトを知りました",
    "夜勤明けで頭が回ってないので変な文章だったらすみません",
    "今月はちょっと金欠なので、買い物は慎重にしたくて",
    "{title_jp}のアニメが終わってから続きが気になって仕方ないです",
    "妹と漫画を貸し借りしてるので、同じ巻を二冊買わないように気をつけてます",
    "引っ越したばかりで、まだいろいろ慣れていなくて",
    "ずっと電子書籍派だったんですが、好きな作品は紙でも揃えたくなりました",
    "昨日の夜{title_jp}の{n}巻を読み終わって、まだ余韻が抜けません",
    "学生なのであまりお金はかけられないんですけど",
    "家族へのプレゼントを探しているところです",
    "{author_jp}先生の作品はデビュー作からずっと追いかけてます",
    "ネットで色々調べてみたんですがよく分からなくて",
    "よくある質問のページも見たんですが、載っていなかったので",
    "日本語の勉強も兼ねて原書で読むようにしてます",
    "通勤時間が長いので、一週間に何冊も読んでしまいます",
    "急いでるので雑な文になっててすみません",
    "職場の昼休みにこっそり送ってます",
    "ずっと楽しみにしていた作品なんです",
    "読書会で{title_jp}を読むことになって、みんなで同じ版を揃えたいんです",
    "紙の質とか印刷にはけっこうこだわるほうなので",
    "小学生の息子が最近漫画に夢中でして",
    "実は漫画をネットでちゃんと買うのはこれが初めてで",
    "母が昔読んでいた作品を、今度は私が読んでみたくなって",
    "週末にまとめて読むのが好きで、いつも金曜に注文してます",
    "前から気になっていたんですが、なかなか聞く機会がなくて",
    "部屋が狭いので、できれば場所をとらない形で持っていたいんです",
]

OPENERS_JA: list[str] = [
    "長文失礼します",
    "ちょっと長くなりますが",
    "前置きが長くなってしまうんですが",
    "少し事情を説明させてください",
    "分かりにくいかもしれないですが",
]

CLOSERS_JA: list[str] = [
    "長々とすみません",
    "分かりにくかったらすみません",
    "以上です",
    "乱文失礼しました",
    "急ぎではないです",
]

# Openers and closers with no intent of their own; no greeting or thanks (those are chitchat,
# which is why "すみません" and "よろしくお願いします" are not here).
FRAME_PREFIXES_JA: list[str] = [
    "質問です",
    "ちょっと聞きたいんですが",
    "確認なんですが",
    "えっと",
    "ひとつ質問",
    "今さらなんですが",
    "念のため",
    "急ぎで",
    "うーん",
    "初歩的な質問かもですが",
]

FRAME_SUFFIXES_JA: list[str] = [
    "急ぎです",
    "できれば早めに",
    "至急",
    "わかる範囲で大丈夫です",
    "わかれば",
    "気になってて",
    "すぐ知りたいです",
    "一応確認です",
]
