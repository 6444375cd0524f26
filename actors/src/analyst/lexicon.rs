//! The Analyst's words: the kinds of records people ask services to keep, the fields they
//! name, and the phrases that mean a whole domain ("a blog", «учёт расходов»).
//!
//! Each word is listed with its English forms and a few Russian forms (nominative singular
//! and plural, genitive plural); [`super::russian::stem`] reduces both the listed forms and
//! the request's words, so any case form of a listed noun matches. Nothing here is a result:
//! the reader combines these entries with what the request says around them.

use artel_messages::spec::FieldType;

/// A kind of record.
pub struct Noun {
    /// English singular, snake_case (`book`).
    pub singular: &'static str,
    /// English plural (`books`).
    pub plural: &'static str,
    /// Russian forms.
    pub russian: &'static [&'static str],
    /// The fields it has when the request names none (the first is its name or title).
    pub fields: &'static [&'static str],
    /// The records it usually belongs to, when the request names them too.
    pub parents: &'static [&'static str],
}

const fn noun(
    singular: &'static str,
    plural: &'static str,
    russian: &'static [&'static str],
    fields: &'static [&'static str],
    parents: &'static [&'static str],
) -> Noun {
    Noun {
        singular,
        plural,
        russian,
        fields,
        parents,
    }
}

/// Every kind of record the offline reader knows by name.
pub const NOUNS: &[Noun] = &[
    noun(
        "book",
        "books",
        &["книга", "книги", "книг"],
        &["title", "author", "isbn"],
        &["author"],
    ),
    noun(
        "author",
        "authors",
        &["автор", "авторы", "авторов"],
        &["name"],
        &[],
    ),
    noun(
        "post",
        "posts",
        &["пост", "посты", "постов", "статья", "статьи", "статей"],
        &["title", "body"],
        &["author"],
    ),
    noun(
        "comment",
        "comments",
        &["комментарий", "комментарии", "комментариев"],
        &["body", "author_name"],
        &["post", "article", "task", "photo", "recipe", "book"],
    ),
    noun("article", "articles", &[], &["title", "body"], &["author"]),
    noun(
        "owner",
        "owners",
        &["владелец", "владельцы", "владельцев", "хозяин", "хозяева"],
        &["name", "phone"],
        &[],
    ),
    noun(
        "pet",
        "pets",
        &["питомец", "питомцы", "питомцев", "животное", "животные"],
        &["name", "species"],
        &["owner"],
    ),
    noun(
        "visit",
        "visits",
        &["визит", "визиты", "визитов", "приём", "приёмы", "приемов"],
        &["date", "reason"],
        &["pet", "patient"],
    ),
    noun(
        "patient",
        "patients",
        &["пациент", "пациенты", "пациентов"],
        &["name"],
        &["owner"],
    ),
    noun(
        "expense",
        "expenses",
        &["расход", "расходы", "расходов", "трата", "траты", "трат"],
        &["amount", "category", "date", "note"],
        &["category"],
    ),
    noun(
        "income",
        "incomes",
        &["доход", "доходы", "доходов"],
        &["amount", "source", "date"],
        &[],
    ),
    noun(
        "category",
        "categories",
        &["категория", "категории", "категорий"],
        &["name"],
        &[],
    ),
    noun(
        "habit",
        "habits",
        &["привычка", "привычки", "привычек"],
        &["name"],
        &[],
    ),
    noun(
        "recipe",
        "recipes",
        &["рецепт", "рецепты", "рецептов"],
        &["title"],
        &[],
    ),
    noun(
        "link",
        "links",
        &["ссылка", "ссылки", "ссылок"],
        &["url"],
        &[],
    ),
    noun("todo", "todos", &[], &["title", "done"], &[]),
    noun(
        "task",
        "tasks",
        &["задача", "задачи", "задач"],
        &["title", "done"],
        &["project"],
    ),
    noun(
        "project",
        "projects",
        &["проект", "проекты", "проектов"],
        &["name"],
        &[],
    ),
    noun(
        "note",
        "notes",
        &["заметка", "заметки", "заметок"],
        &["title", "body"],
        &[],
    ),
    noun(
        "bookmark",
        "bookmarks",
        &["закладка", "закладки", "закладок"],
        &["url", "title"],
        &[],
    ),
    noun(
        "contact",
        "contacts",
        &["контакт", "контакты", "контактов"],
        &["name", "email", "phone"],
        &[],
    ),
    noun(
        "event",
        "events",
        &[
            "событие",
            "события",
            "событий",
            "мероприятие",
            "мероприятия",
            "мероприятий",
        ],
        &["title", "date"],
        &[],
    ),
    noun(
        "product",
        "products",
        &[
            "товар",
            "товары",
            "товаров",
            "продукт",
            "продукты",
            "продуктов",
        ],
        &["name", "price"],
        &["category"],
    ),
    noun(
        "order",
        "orders",
        &["заказ", "заказы", "заказов"],
        &["quantity", "status"],
        &["customer", "product"],
    ),
    noun(
        "customer",
        "customers",
        &[
            "клиент",
            "клиенты",
            "клиентов",
            "покупатель",
            "покупатели",
            "покупателей",
        ],
        &["name", "email"],
        &[],
    ),
    noun(
        "review",
        "reviews",
        &["отзыв", "отзывы", "отзывов"],
        &["rating", "body"],
        &["product", "book", "movie", "restaurant"],
    ),
    noun(
        "movie",
        "movies",
        &["фильм", "фильмы", "фильмов"],
        &["title", "year"],
        &[],
    ),
    noun(
        "song",
        "songs",
        &["песня", "песни", "песен"],
        &["title", "artist"],
        &["playlist"],
    ),
    noun(
        "playlist",
        "playlists",
        &["плейлист", "плейлисты", "плейлистов"],
        &["name"],
        &[],
    ),
    noun(
        "student",
        "students",
        &[
            "студент",
            "студенты",
            "студентов",
            "ученик",
            "ученики",
            "учеников",
        ],
        &["name", "email"],
        &[],
    ),
    noun(
        "course",
        "courses",
        &["курс", "курсы", "курсов"],
        &["title"],
        &[],
    ),
    noun(
        "employee",
        "employees",
        &["сотрудник", "сотрудники", "сотрудников"],
        &["name", "email"],
        &["department"],
    ),
    noun(
        "department",
        "departments",
        &["отдел", "отделы", "отделов"],
        &["name"],
        &[],
    ),
    noun(
        "ticket",
        "tickets",
        &["тикет", "тикеты", "тикетов", "заявка", "заявки", "заявок"],
        &["title", "description", "status"],
        &["project"],
    ),
    noun(
        "entry",
        "entries",
        &["запись", "записи", "записей"],
        &["name", "message"],
        &[],
    ),
    noun(
        "message",
        "messages",
        &["сообщение", "сообщения", "сообщений"],
        &["body"],
        &[],
    ),
    noun(
        "item",
        "items",
        &["предмет", "предметы", "предметов", "вещь", "вещи", "вещей"],
        &["name", "quantity"],
        &["room", "category"],
    ),
    noun(
        "room",
        "rooms",
        &["комната", "комнаты", "комнат"],
        &["name"],
        &[],
    ),
    noun(
        "booking",
        "bookings",
        &["бронь", "брони", "бронирование", "бронирования"],
        &["name", "date"],
        &["room"],
    ),
    noun(
        "workout",
        "workouts",
        &["тренировка", "тренировки", "тренировок"],
        &["date", "duration"],
        &[],
    ),
    noun(
        "exercise",
        "exercises",
        &["упражнение", "упражнения", "упражнений"],
        &["name", "sets", "reps"],
        &["workout"],
    ),
    noun(
        "meal",
        "meals",
        &["блюдо", "блюда", "блюд"],
        &["name", "calories"],
        &[],
    ),
    noun(
        "plant",
        "plants",
        &["растение", "растения", "растений"],
        &["name", "species"],
        &[],
    ),
    noun(
        "invoice",
        "invoices",
        &["счёт", "счета", "счетов"],
        &["number", "amount", "due_date"],
        &["customer"],
    ),
    noun(
        "photo",
        "photos",
        &["фото", "фотография", "фотографии", "фотографий"],
        &["url", "caption"],
        &["album"],
    ),
    noun(
        "album",
        "albums",
        &["альбом", "альбомы", "альбомов"],
        &["title"],
        &[],
    ),
    noun(
        "member",
        "members",
        &["участник", "участники", "участников"],
        &["name", "email"],
        &["team"],
    ),
    noun(
        "team",
        "teams",
        &["команда", "команды", "команд"],
        &["name"],
        &[],
    ),
    noun(
        "goal",
        "goals",
        &["цель", "цели", "целей"],
        &["title", "done"],
        &[],
    ),
    noun(
        "restaurant",
        "restaurants",
        &["ресторан", "рестораны", "ресторанов"],
        &["name", "address"],
        &[],
    ),
    noun(
        "car",
        "cars",
        &["машина", "машины", "машин", "автомобиль", "автомобили"],
        &["make", "model", "year"],
        &["owner"],
    ),
    noun(
        "user",
        "users",
        &["пользователь", "пользователи", "пользователей"],
        &["name", "email"],
        &[],
    ),
    noun(
        "quote",
        "quotes",
        &["цитата", "цитаты", "цитат"],
        &["text", "author_name"],
        &[],
    ),
    noun(
        "question",
        "questions",
        &["вопрос", "вопросы", "вопросов"],
        &["title", "body"],
        &[],
    ),
    noun(
        "answer",
        "answers",
        &["ответ", "ответы", "ответов"],
        &["body"],
        &["question"],
    ),
    noun(
        "subscription",
        "subscriptions",
        &["подписка", "подписки", "подписок"],
        &["name", "price", "renewal_date"],
        &[],
    ),
];

/// Nouns that, after "with" on a record, are a list of strings on it rather than records of
/// their own (a recipe's ingredients and steps, a post's tags).
pub const LIST_WORDS: &[(&str, &[&str])] = &[
    (
        "ingredients",
        &["ингредиент", "ингредиенты", "ингредиентов"],
    ),
    ("steps", &["шаг", "шаги", "шагов"]),
    ("tags", &["тег", "теги", "тегов", "метка", "метки", "меток"]),
    ("labels", &[]),
    ("skills", &["навык", "навыки", "навыков"]),
    ("genres", &["жанр", "жанры", "жанров"]),
    ("attendees", &[]),
];

/// Phrases that name a whole domain: what they keep, and a title.
pub struct Domain {
    /// Lowercase words that must all appear (English) or, stemmed, all match (Russian).
    pub words: &'static [&'static str],
    /// The plural nouns of what it keeps.
    pub keeps: &'static [&'static str],
    /// Its English title.
    pub title: &'static str,
}

const fn domain(
    words: &'static [&'static str],
    keeps: &'static [&'static str],
    title: &'static str,
) -> Domain {
    Domain {
        words,
        keeps,
        title,
    }
}

/// Domains, most specific first.
pub const DOMAINS: &[Domain] = &[
    domain(&["url", "shortener"], &["links"], "URL shortener"),
    domain(&["link", "shortener"], &["links"], "Link shortener"),
    domain(&["shortener"], &["links"], "Link shortener"),
    domain(&["коротк", "ссылок"], &["links"], "Сервис коротких ссылок"),
    domain(&["сокращ", "ссыл"], &["links"], "Сервис коротких ссылок"),
    domain(&["library"], &["books"], "Library catalog"),
    domain(&["библиотек"], &["books"], "Библиотека"),
    domain(&["blog"], &["posts"], "Blog"),
    domain(&["блог"], &["posts"], "Блог"),
    domain(&["guestbook"], &["entries"], "Guestbook"),
    domain(&["guest", "book"], &["entries"], "Guestbook"),
    domain(&["гостев", "книг"], &["entries"], "Гостевая книга"),
    domain(&["todo"], &["todos"], "Todo list"),
    domain(&["to-do"], &["todos"], "Todo list"),
    domain(&["to", "do", "list"], &["todos"], "Todo list"),
    domain(&["список", "дел"], &["tasks"], "Список дел"),
    domain(&["expense"], &["expenses"], "Expense tracker"),
    domain(&["spending"], &["expenses"], "Expense tracker"),
    domain(&["budget"], &["expenses"], "Budget"),
    domain(&["расход"], &["expenses"], "Учёт расходов"),
    domain(&["habit"], &["habits"], "Habit tracker"),
    domain(&["привыч"], &["habits"], "Трекер привычек"),
    domain(
        &["pet", "clinic"],
        &["owners", "pets", "visits"],
        "Pet clinic",
    ),
    domain(&["vet"], &["owners", "pets", "visits"], "Vet clinic"),
    domain(&["ветеринар"], &["owners", "pets", "visits"], "Ветклиника"),
    domain(&["recipe"], &["recipes"], "Recipe box"),
    domain(&["рецепт"], &["recipes"], "Рецепты"),
    domain(&["address", "book"], &["contacts"], "Address book"),
    domain(&["phone", "book"], &["contacts"], "Phone book"),
    domain(&["записн", "книжк"], &["contacts"], "Записная книжка"),
    domain(&["bookmark"], &["bookmarks"], "Bookmarks"),
    domain(&["закладк"], &["bookmarks"], "Закладки"),
    domain(&["inventory"], &["items"], "Inventory"),
    domain(&["склад"], &["items"], "Склад"),
    domain(&["notes"], &["notes"], "Notes"),
    domain(&["note-taking"], &["notes"], "Notes"),
    domain(&["заметк"], &["notes"], "Заметки"),
    domain(&["заметок"], &["notes"], "Заметки"),
    domain(&["crm"], &["customers"], "CRM"),
    domain(&["shop"], &["products", "orders"], "Shop"),
    domain(
        &["online", "store"],
        &["products", "orders"],
        "Online store",
    ),
    domain(&["магазин"], &["products", "orders"], "Магазин"),
    domain(&["helpdesk"], &["tickets"], "Helpdesk"),
    domain(&["bug", "tracker"], &["tickets"], "Bug tracker"),
    domain(&["issue", "tracker"], &["tickets"], "Issue tracker"),
    domain(&["workout"], &["workouts"], "Workout log"),
    domain(&["fitness"], &["workouts"], "Workout log"),
];

/// What a field name means: its type, and whether it is the record's unique key.
pub struct FieldWord {
    /// snake_case name.
    pub name: &'static str,
    /// English words (lowercase; a two-word name is written with a space).
    pub english: &'static [&'static str],
    /// Russian forms.
    pub russian: &'static [&'static str],
    /// Its type.
    pub ty: FieldType,
    /// No two records share it.
    pub unique: bool,
}

const fn field(
    name: &'static str,
    english: &'static [&'static str],
    russian: &'static [&'static str],
    ty: FieldType,
) -> FieldWord {
    FieldWord {
        name,
        english,
        russian,
        ty,
        unique: false,
    }
}

const fn unique(mut word: FieldWord) -> FieldWord {
    word.unique = true;
    word
}

/// Field names the reader knows, with their types.
pub const FIELDS: &[FieldWord] = &[
    field(
        "title",
        &["title", "headline", "subject"],
        &["название", "заголовок", "тема"],
        FieldType::String,
    ),
    field(
        "name",
        &["name"],
        &["имя", "наименование"],
        FieldType::String,
    ),
    field(
        "author",
        &["author"],
        &["автор", "автора", "автором"],
        FieldType::String,
    ),
    unique(field("isbn", &["isbn"], &["isbn"], FieldType::String)),
    field(
        "body",
        &["body", "text", "content"],
        &["текст", "содержание", "содержимое"],
        FieldType::Text,
    ),
    field(
        "description",
        &["description", "details"],
        &["описание", "описанием"],
        FieldType::Text,
    ),
    field(
        "note",
        &["note", "comment", "memo"],
        &["примечание", "комментарий"],
        FieldType::Text,
    ),
    field("notes", &["notes"], &["заметки"], FieldType::Text),
    field("message", &["message"], &["сообщение"], FieldType::Text),
    field("reason", &["reason"], &["причина"], FieldType::Text),
    field(
        "due_date",
        &["due date", "deadline", "due"],
        &["срок", "дедлайн"],
        FieldType::Date,
    ),
    field(
        "date",
        &["date", "day"],
        &["дата", "датой", "день"],
        FieldType::Date,
    ),
    field(
        "birth_date",
        &["birthday", "birth date", "date of birth"],
        &["рождения", "день рождения"],
        FieldType::Date,
    ),
    field(
        "renewal_date",
        &["renewal date", "renewal"],
        &["продление"],
        FieldType::Date,
    ),
    field(
        "time",
        &["time", "timestamp", "when"],
        &["время"],
        FieldType::Datetime,
    ),
    field(
        "starts_at",
        &["start time", "starts at"],
        &["начало"],
        FieldType::Datetime,
    ),
    field(
        "amount",
        &["amount", "sum", "total"],
        &["сумма", "суммой", "сумму"],
        FieldType::Money,
    ),
    field(
        "price",
        &["price", "cost"],
        &["цена", "ценой", "стоимость"],
        FieldType::Money,
    ),
    field(
        "category",
        &["category"],
        &["категория", "категорией"],
        FieldType::String,
    ),
    field(
        "email",
        &["email", "e-mail", "mail"],
        &["почта", "email"],
        FieldType::Email,
    ),
    field(
        "phone",
        &["phone", "phone number", "telephone"],
        &["телефон", "телефоном"],
        FieldType::String,
    ),
    field(
        "url",
        &["url", "link", "address of the page", "website"],
        &["ссылка", "адрес сайта", "url"],
        FieldType::Url,
    ),
    field("address", &["address"], &["адрес"], FieldType::String),
    field(
        "tags",
        &["tags", "labels"],
        &["теги", "метки"],
        FieldType::StringList,
    ),
    field(
        "quantity",
        &["quantity", "count", "amount of"],
        &["количество"],
        FieldType::Integer,
    ),
    field(
        "rating",
        &["rating", "stars", "score"],
        &["оценка", "рейтинг"],
        FieldType::Integer,
    ),
    field("year", &["year"], &["год"], FieldType::Integer),
    field("age", &["age"], &["возраст"], FieldType::Integer),
    field(
        "duration",
        &["duration", "minutes"],
        &["длительность", "продолжительность"],
        FieldType::Integer,
    ),
    field(
        "calories",
        &["calories"],
        &["калории", "калорий"],
        FieldType::Integer,
    ),
    field("sets", &["sets"], &["подходы"], FieldType::Integer),
    field(
        "reps",
        &["reps", "repetitions"],
        &["повторения"],
        FieldType::Integer,
    ),
    field(
        "pages",
        &["pages", "page count"],
        &["страниц", "страницы"],
        FieldType::Integer,
    ),
    field("weight", &["weight"], &["вес"], FieldType::Number),
    field(
        "value",
        &["value", "reading"],
        &["значение"],
        FieldType::Number,
    ),
    field(
        "done",
        &["done", "completed", "complete", "finished"],
        &["выполнено", "сделано"],
        FieldType::Boolean,
    ),
    field("priority", &["priority"], &["приоритет"], FieldType::Enum),
    field(
        "status",
        &["status", "state"],
        &["статус", "состояние"],
        FieldType::Enum,
    ),
    field(
        "species",
        &["species", "kind of animal"],
        &["вид"],
        FieldType::String,
    ),
    field("breed", &["breed"], &["порода"], FieldType::String),
    field(
        "artist",
        &["artist", "singer", "band"],
        &["исполнитель"],
        FieldType::String,
    ),
    field("source", &["source"], &["источник"], FieldType::String),
    field("caption", &["caption"], &["подпись"], FieldType::String),
    field("make", &["make", "brand"], &["марка"], FieldType::String),
    field("model", &["model"], &["модель"], FieldType::String),
    unique(field("number", &["number"], &["номер"], FieldType::String)),
    field(
        "location",
        &["location", "place"],
        &["место"],
        FieldType::String,
    ),
    field("color", &["color", "colour"], &["цвет"], FieldType::String),
    field("genre", &["genre"], &["жанр"], FieldType::String),
    field(
        "author_name",
        &["author name", "nickname"],
        &["никнейм"],
        FieldType::String,
    ),
];

/// The choices of the enum fields the reader knows.
pub fn choices_of(field: &str) -> &'static [&'static str] {
    match field {
        "priority" => &["low", "normal", "high"],
        "status" => &["open", "in_progress", "closed"],
        _ => &[],
    }
}

/// Requests of another kind than a resource API, by a word they contain, and what they are.
pub const OUT_OF_RANGE: &[(&[&str], &str)] = &[
    (&["telegram", "телеграм"], "a Telegram bot"),
    (&["discord"], "a Discord bot"),
    (&["slack"], "a Slack bot"),
    (&["whatsapp"], "a WhatsApp bot"),
    (&["bot", "бот"], "a chat bot"),
    (
        &["converter", "convert", "конвертер", "конвертир"],
        "a file converter",
    ),
    (
        &["scraper", "scrape", "crawler", "парсер", "скрейп"],
        "a web scraper",
    ),
    (&["game", "игра", "игру"], "a game"),
    (&["calculator", "калькулятор"], "a calculator"),
    (&["chat", "чат", "websocket"], "a real-time chat"),
    (
        &["resize", "thumbnail", "image processing"],
        "an image processor",
    ),
    (
        &["machine learning", "neural", "нейросет", "classifier"],
        "a machine-learning service",
    ),
    (&["pdf"], "a PDF tool"),
    (&["video", "видео", "stream"], "a video service"),
    (
        &["weather", "погод"],
        "a weather service (it needs a forecast provider)",
    ),
];

/// Parts of a request the offline reader cannot build, by a word they contain.
pub const UNPLACEABLE: &[&str] = &[
    "login",
    "log in",
    "sign in",
    "signup",
    "sign up",
    "oauth",
    "password",
    "authentication",
    "accounts",
    "email me",
    "emails me",
    "notify",
    "notification",
    "notifications",
    "remind",
    "reminder",
    "payment",
    "payments",
    "stripe",
    "upload",
    "uploads",
    "weekly",
    "daily report",
    "export",
    "import",
    "chart",
    "charts",
    "graph",
    "dashboard",
    "sms",
    "push",
    "share",
    "авториз",
    "логин",
    "парол",
    "уведомл",
    "напомина",
    "оплат",
    "загрузк",
    "график",
];
